"""The launcher's decisions: refuse a start in the other security mode than a component's data
was made in (deploy.modes, deploy.stack), and which ports a stack directory's launcher uses; on
directories laid out as the components leave them, no server runs.
tests/faults/test_launcher_stack.py runs the open -> secured switch on real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import modes
from deploy.stack import DEFAULT_PORTS, PORTS_FILE, Stack, chosen_ports, recorded_ports

pytestmark = pytest.mark.unit


def made(root: Path, secure: bool) -> Stack:
    """A stopped stack whose Kafka, Redis and SeaweedFS hold data made in one mode."""
    stack = Stack.in_dir(root, secure=secure)
    (stack.kafka.root / "data").mkdir(parents=True)
    (stack.kafka.root / "data" / "meta.properties").write_text("node.id=1\n")
    (stack.redis.root / "appendonlydir").mkdir(parents=True)
    (stack.store.root / "data").mkdir(parents=True)
    for c in (stack.kafka, stack.redis, stack.store):
        modes.record(c.root, secure)
    return stack


def test_the_same_mode_or_no_data_starts() -> None:
    assert modes.conflict("Kafka", Path("k"), None, True) is None
    assert modes.conflict("Kafka", Path("k"), modes.SECURED, True) is None
    assert modes.conflict("Redis", Path("r"), modes.OPEN, False) is None


def test_a_secured_start_on_open_data_names_each_component_and_what_to_do(
    tmp_path: Path,
) -> None:
    made(tmp_path / "infra", secure=False)
    why = Stack.in_dir(tmp_path / "infra", secure=True).mode_conflict()
    assert why is not None
    lines = why.splitlines()
    assert lines[0].startswith(
        f"Kafka in {tmp_path / 'infra' / 'kafka'} holds data made for the open"
    )
    assert "without the SCRAM users" in lines[0]
    assert lines[1].startswith("Redis in") and lines[2].startswith("SeaweedFS in")
    assert "`make up INSECURE=1`" in lines[3] and f"rm -rf {tmp_path / 'infra'}" in lines[3]


def test_an_open_start_on_secured_data_is_refused_the_same_way(tmp_path: Path) -> None:
    made(tmp_path / "infra", secure=True)
    why = Stack.in_dir(tmp_path / "infra", secure=False).mode_conflict()
    assert why is not None
    assert "holds data made for the secured stack" in why
    assert "`make up` without INSECURE" in why
    assert Stack.in_dir(tmp_path / "infra", secure=True).mode_conflict() is None


def test_data_from_before_modes_were_recorded_tells_its_mode(tmp_path: Path) -> None:
    """A stack made by the launcher before it wrote mode files: Kafka's last config had a
    SASL_SSL listener only when secured, only a secured Redis has an ACL file."""
    stack = made(tmp_path / "infra", secure=False)
    for c in (stack.kafka, stack.redis, stack.store):
        (c.root / modes.MODE_FILE).unlink()
    (stack.kafka.root / "server.properties").write_text("listeners=PLAINTEXT://127.0.0.1:1\n")
    assert stack.kafka.stored_mode() == modes.OPEN
    assert stack.redis.stored_mode() == modes.OPEN
    (stack.kafka.root / "server.properties").write_text("listeners=SASL_SSL://127.0.0.1:1\n")
    (stack.redis.root / "users.acl").write_text("user projector on\n")
    assert stack.kafka.stored_mode() == modes.SECURED
    assert stack.redis.stored_mode() == modes.SECURED


def test_ports_given_else_recorded_by_the_last_up_else_the_defaults(tmp_path: Path) -> None:
    """`make down` after `make up PORTS=...` stops the stack on the ports it started on."""
    assert chosen_ports({}, {}) == DEFAULT_PORTS
    assert recorded_ports(tmp_path) == {}
    (tmp_path / PORTS_FILE).write_text('{"kafka_port": 19092, "s3_port": 18333}')
    ports = chosen_ports({"kafka_port": None, "s3_port": 28333}, recorded_ports(tmp_path))
    assert ports == {**DEFAULT_PORTS, "kafka_port": 19092, "s3_port": 28333}
