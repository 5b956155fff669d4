"""KEEL_BUS=kafka://… switches the commands to the real broker; topics and schemas topic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.codec import Codec
from keel.log import provision
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import SchemaRegistry, load_registry
from keel.secure.credentials import secrets_for, split_address
from keel.settings import Settings
from keel_services.entrypoints.cli.main import app
from tests.conftest import make_deployed
from tests.infra import kafka_conf

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture
def kafka_env(kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    prefix = new_prefix()
    monkeypatch.setenv("KEEL_BUS", f"kafka://{kafka_bootstrap}?prefix={prefix}")
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    return prefix


def test_artifacts_and_tail_go_through_kafka(
    kafka_env: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    f = tmp_path / "prompt.txt"
    f.write_text("Judge the answer.")
    put = runner.invoke(app, ["artifacts", "put", str(f), "--kind", "prompt_template"])
    assert put.exit_code == 0, put.output
    tail = runner.invoke(app, ["audit", "tail", "--json"])
    assert tail.exit_code == 0, tail.output
    lines = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [(e["topic"], e["artifact_id"]) for e in lines] == [("artifacts", put.stdout.strip())]
    log = KafkaEventLog(kafka_bootstrap, prefix=kafka_env, provision_topics=False)
    assert len(list(log.read(["artifacts"]))) == 1  # on the broker, not in a local file
    log.close()


def test_tail_follow_prints_new_events(kafka_env: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"KEEL_BUS": Settings().bus_url(), "KEEL_HOME": str(home), "PATH": ""}
    keel = str(Path(sys.executable).with_name("keel"))
    proc = subprocess.Popen(
        [keel, "audit", "tail", "--follow", "--idle-exit", "8"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    f = tmp_path / "later.txt"
    f.write_text("later")
    assert runner.invoke(app, ["artifacts", "put", str(f), "--kind", "note"]).exit_code == 0
    out, _ = proc.communicate(timeout=120)
    assert "ArtifactRecorded" in out and "note" in out


def test_topics_apply_is_idempotent_and_check_reports_drift(
    kafka_env: str, kafka_bootstrap: str
) -> None:
    assert runner.invoke(app, ["topics", "apply"]).exit_code == 0
    again = runner.invoke(app, ["topics", "apply", "--json"])
    assert json.loads(again.stdout)["changes"] == []
    assert runner.invoke(app, ["topics", "check"]).exit_code == 0
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    admin = AdminClient(kafka_conf(kafka_bootstrap))
    shortened = ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource("topic", kafka_env + "registry", incremental_configs=[shortened])
    for fut in admin.incremental_alter_configs([res]).values():  # someone cut history to a day
        fut.result()
    drift = runner.invoke(app, ["topics", "check", "--json"])
    assert drift.exit_code == 1
    found = json.loads(drift.stdout)["drift"]
    assert {
        "topic": "registry",
        "item": "retention.ms",
        "declared": "-1",
        "actual": "86400000",
    } in found
    assert runner.invoke(app, ["topics", "apply"]).exit_code == 0
    assert (
        provision.check(kafka_bootstrap, kafka_env, secrets_for(*split_address(kafka_bootstrap)))
        == []
    )


def test_unknown_fingerprints_resolve_from_the_schemas_topic(
    kafka_env: str, kafka_bootstrap: str
) -> None:
    from keel.bootstrap import bootstrap, schema_resolver
    from keel.events import decode_event

    with bootstrap() as rt:
        rt.publish([make_deployed()])  # announces ModelDeployed's schema first
        log = rt.log
        record = next(iter(log.read(["deployments"])))
        # A consumer whose code knows no schema at all still decodes the event.
        empty = Codec(SchemaRegistry([]), schema_resolver(log))
        event = decode_event(empty, record.value)
        assert type(event).__name__ == "ModelDeployed"
        assert empty.registry.by_fingerprint(load_registry().latest("ModelDeployed").fingerprint)


def test_tail_reads_the_schemas_topic_and_refuses_unknown_topics(
    kafka_env: str, tmp_path: Path
) -> None:
    f = tmp_path / "prompt.txt"
    f.write_text("Judge the answer.")
    assert runner.invoke(app, ["artifacts", "put", str(f), "--kind", "prompt"]).exit_code == 0
    out = runner.invoke(app, ["audit", "tail", "--topic", "schemas"])
    assert out.exit_code == 0 and "UNDECODABLE" not in out.stdout, out.output
    assert "ArtifactRecorded" in out.stdout
    doc = json.loads(runner.invoke(app, ["audit", "tail", "--topic", "schemas", "--json"]).stdout)
    assert doc["name"].endswith("ArtifactRecorded") and doc["schema"]["type"] == "record"
    bad = runner.invoke(app, ["audit", "tail", "--topic", "nosuch"])
    assert bad.exit_code == 2 and "no topic named 'nosuch'" in bad.output
    assert "artifacts" in bad.output  # the hint lists the topics there are
