"""docker-compose.yml stays consistent with the code (no Docker engine here to run it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from keel.cli.main import app
from keel.service_runner import runnable

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_every_long_lived_service_with_a_real_command() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in runnable():
        assert services[name]["command"] == ["service", "run", name]
    assert (ROOT / services["topics"]["build"]["dockerfile"]).exists()
    runner = CliRunner()
    for svc in services.values():
        if "command" in svc and svc.get("build"):
            assert runner.invoke(app, [*svc["command"][:2], "--help"]).exit_code == 0
