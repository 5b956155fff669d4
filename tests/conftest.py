"""Shared fixtures: a registry/codec over the repository's schemas, sample events, temp homes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.codec import Codec
from keel.events import envelope
from keel.events import generated as g
from keel.schemas.registry import SchemaRegistry, load_registry

# The test process itself acts as the stack's operator (it provisions prefixes, tampers with
# records to test verify); events it appends still go in as their writer's principal when it
# holds that one (keel.secure.credentials). `keel service run` processes are their service.
os.environ.setdefault("KEEL_PRINCIPAL", "operator")
# Every home's default local witness (decision 0023) goes under the user's state directory:
# tests keep theirs in one throwaway directory per run (subprocesses inherit it), never in
# the real ~/.local/state. A home's witness is named by its audit key and log path, so copies
# of one demo home do not share one.
os.environ["XDG_STATE_HOME"] = __import__("tempfile").mkdtemp(prefix="keel-test-state-")


def worker_port_range(worker: str, count: int, ephemeral_lo: int) -> tuple[int, int]:
    """Test worker `worker` ("gw0", "gw1", ... of `count`, pytest-xdist)'s own slice of the
    ports below the kernel's ephemeral range: each worker's servers (Kafka, Redis, SeaweedFS,
    HTTP services) come from deploy.processes.free_port in its slice, so no two workers are
    ever handed one port, and no outgoing connection takes one between pick and bind."""
    lo, hi = 10000, max(ephemeral_lo, 10000 + 64 * count)
    size = (hi - lo) // count
    index = int(worker.removeprefix("gw"))
    return lo + index * size, lo + (index + 1) * size


def _ephemeral_lo() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    from deploy.processes import PORT_RANGE

    _lo, _hi = worker_port_range(
        worker, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), _ephemeral_lo()
    )
    os.environ[PORT_RANGE] = f"{_lo}-{_hi}"

# The longest test files (the Kafka e2e and fault tests, minutes each), measured in a parallel
# run (decision 0033): collected first, so that under `--dist loadfile` they start at once on
# the workers and the short files fill in around them, instead of one arriving last and
# running alone at the end. Any other file keeps its place.
LONG_FILES_FIRST = (  # by their total time in the first parallel run, longest first
    "tests/e2e/test_mlflow_bridge.py",
    "tests/faults/test_disaster_drill.py",
    "tests/e2e/test_ingest_bounded_memory.py",
    "tests/faults/test_projector_kill_kafka.py",
    "tests/e2e/test_people.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_review_pack_attacks.py",
    "tests/e2e/test_cli_fast_path.py",
    "tests/faults/test_projector_kill.py",
    "tests/e2e/test_console.py",
    "tests/e2e/test_services_as_processes.py",
    "tests/e2e/test_examples.py",
    "tests/e2e/test_projector_service.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=key)  # stable: within a file, and among the rest, the order stays


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    return load_registry()


@pytest.fixture(scope="session")
def codec(registry: SchemaRegistry) -> Codec:
    return Codec(registry)


def make_deployed(
    model_id: str = "m" * 64,
    env: str = "prod",
    at: datetime | None = None,
    subject: str = "fam/prod",
) -> g.ModelDeployed:
    return g.ModelDeployed(
        envelope=envelope(
            "ModelDeployed",
            subject=subject,
            service="test",
            code_version="c0de",
            actor="tester",
            correlation_id=str(uuid.uuid4()),
            occurred_at=at or datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        ),
        family="fam",
        env=env,
        model_id=model_id,
        manifest_id="f" * 64,
        kind="promotion",
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "keel-home"
    monkeypatch.setenv("KEEL_HOME", str(h))
    monkeypatch.delenv("KEEL_BUS", raising=False)
    monkeypatch.delenv("KEEL_VIEWS", raising=False)
    return h


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real broker per test session (starting one takes seconds)."""
    from tests.infra import kafka_server

    with kafka_server(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.infra import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """AWS_* variables of a real S3-compatible server (SeaweedFS), one per session."""
    from tests.infra import object_store

    with object_store(tmp_path_factory.mktemp("s3")) as env:
        yield env


@pytest.fixture
def s3_url(s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket prefix on the session's object store, with the AWS_* variables set."""
    import uuid

    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    # A plain bucket (the harness's admin key makes it): the store's contract on any S3
    # bucket, where overwriting or deleting an object is possible and must be detected. The
    # launcher's write-once buckets (keel-test, keel-artifacts) are tested in test_security.
    return f"s3://keel-contract/{uuid.uuid4().hex[:12]}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a passing test: fail the run if anything skipped. Under xdist this
    decides on the controller, whose reporter counts every worker's reports (a worker's own
    exit status does not become the run's)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1
