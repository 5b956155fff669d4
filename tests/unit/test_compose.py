"""docker-compose.yml stays consistent with the code (no Docker engine here to run it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deploy import security
from keel.secure.credentials import Secrets
from keel_services.entrypoints.cli.main import app
from keel_services.entrypoints.runner import runnable

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:  # type: ignore[type-arg]
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_runs_every_long_lived_service_with_a_real_command() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["command"] == ["bash", "/secrets/kafka-start.sh"]
    for name in runnable():
        assert services[name]["command"] == ["service", "run", name]
    assert (ROOT / services["setup"]["build"]["dockerfile"]).exists()
    assert "COPY deploy ./deploy" in (ROOT / "deploy/docker/Dockerfile").read_text()
    runner = CliRunner()
    for svc in services.values():
        if "command" in svc and svc.get("build") and "entrypoint" not in svc:
            assert runner.invoke(app, [*svc["command"][:2], "--help"]).exit_code == 0


def test_compose_gives_each_service_only_its_own_secrets(tmp_path: Path) -> None:
    """What the `secrets` one-shot writes is what the other containers mount and read."""
    services = compose()["services"]
    assert services["secrets"]["entrypoint"][-2:] == ["compose", "/secrets"]
    security.compose(tmp_path)
    props = dict(
        line.split("=", 1) for line in (tmp_path / "kafka.properties").read_text().splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert "PLAINTEXT" not in props["listener.security.protocol.map"]
    start = (tmp_path / "kafka-start.sh").read_text()
    assert "--add-scram" in start and "/secrets/kafka.properties" in start
    assert "user default on #" in (tmp_path / "users.acl").read_text()
    assert "nopass" not in (tmp_path / "users.acl").read_text()
    for name in [*runnable(), "ingest", "audit"]:
        env = services[name]["environment"]
        assert env["KEEL_SECRETS"] == f"/secrets/principals/{name}"
        own = Secrets(tmp_path / "principals" / name)
        assert own.principals("kafka") == [name]  # its own password, nobody else's
        assert own.principals("redis") == ["projector" if name == "projector" else "reader"]
        assert (own.root / "ca.pem").exists()
    assert services["setup"]["environment"]["KEEL_SECRETS"] == "/secrets/principals/operator"
