"""The audit API's read model: a check costs O(topics) when nothing is new and reads only the new
events when something is; on Kafka a watcher folds what arrives and answers say how old their
check is. Real SQLite; real Kafka and Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.audit import view_queries as vq
from keel.audit.freshness import FreshViews, WatchedViews
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.port import EventLog, LogRecord
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.integration
CODEC = Codec(load_registry())


class CountingLog:
    """The log, counting the records its readers pull."""

    def __init__(self, log: EventLog) -> None:
        self.inner, self.pulled = log, 0

    def read(self, *args: Any, **kwargs: Any) -> Iterator[LogRecord]:
        for rec in self.inner.read(*args, **kwargs):
            self.pulled += 1
            yield rec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def append(log: EventLog, start: int, n: int) -> None:
    log.append([to_outgoing(CODEC, e) for i in range(start, start + n) for e in events(i)])


def test_a_check_reads_only_what_is_new(tmp_path: Path) -> None:
    raw = SqliteEventLog(tmp_path / "log.db")
    append(raw, 0, 1000)  # 2,000 events of history
    log = CountingLog(raw)
    views = SqliteViewStore(tmp_path / "views.db")
    fresh = FreshViews(log, views, CODEC)  # type: ignore[arg-type]
    first = fresh.check()
    assert first.lag == 0 and log.pulled == 2000 and fresh.folds == 1
    log.pulled = 0
    for _ in range(50):  # nothing new: no fold, no record read
        assert fresh.check().lag == 0
    assert log.pulled == 0 and fresh.folds == 1
    append(raw, 1000, 3)  # six new events: the next check folds exactly those
    after = fresh.check()
    assert after.lag == 0 and fresh.folds == 2 and log.pulled == 6
    model = vq.serving_at(views, "f", "staging" if 1002 % 2 else "prod", time_after_all())
    assert model["serving"]["model_id"] == f"{1002:064x}"
    assert after.positions == {f"{t}/{p}": o for (t, p), o in views.tracking("audit").items()}


def time_after_all() -> Any:
    from datetime import UTC, datetime

    return datetime(2030, 1, 1, tzinfo=UTC)


def test_on_kafka_a_watcher_process_folds_what_arrives_into_a_replica(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.settings import Settings
    from keel.views.redis import RedisViewStore

    prefix, ns = new_prefix(), f"fresh{time.time_ns()}:"
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    views = RedisViewStore(redis_url, namespace=ns)
    settings = Settings(
        home=tmp_path,
        project=tmp_path / "keel.toml",
        bus=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        views=f"{redis_url}?namespace={ns}",
    )
    try:
        append(log, 0, 200)
        replica = tmp_path / "replica" / "views.db"
        fresh = WatchedViews(settings, replica, watch_every=0.05)
        local = SqliteViewStore(replica)
        first = fresh.check()  # the first state is folded before the first answer
        assert first.lag == 0 and fresh.folds == 1 and sum(first.positions.values()) >= 400
        append(log, 200, 5)
        deadline = time.monotonic() + 60
        while (vq.serving_at(local, "f", "staging", time_after_all())["serving"] or {}).get(
            "model_id"
        ) != f"{203:064x}":
            assert time.monotonic() < deadline, "the watcher did not fold the new events"
            time.sleep(0.05)
        while fresh.folds < 2:  # its state follows the fold
            assert time.monotonic() < deadline
            time.sleep(0.01)
        state = fresh.check()
        assert state.lag == 0 and state.checked_ms_ago < 5000
        assert sum(state.positions.values()) >= 410
        fresh._proc.kill()  # a watcher that dies is started again, views still current
        fresh._proc.join()
        again = fresh.check()
        assert fresh._proc.is_alive() and again.lag == 0 and again.positions == state.positions
        fresh.close()
        assert views.tracking("audit") == {}  # the replica folds into its own file only
    finally:
        views.clear()
        log.close()


def test_the_serving_fast_path_answers_as_the_documented_route(tmp_path: Path) -> None:
    """GET /v1/serving/... skips FastAPI's parameter solving; a request it does not recognise
    (here an extra query parameter) reaches the FastAPI route: both must answer alike."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.settings import Settings
    from keel_services.audit.http import create_app

    (tmp_path / "home").mkdir()
    log = SqliteEventLog(tmp_path / "home" / "log.db")
    append(log, 0, 100)
    log.close()
    with bootstrap(Settings(home=tmp_path / "home", project=tmp_path / "keel.toml")) as rt:
        c = TestClient(create_app(rt, token="t"))
        auth = {"Authorization": "Bearer t"}
        queries = ("", "?at=2024-01-01T00:30", "?at=1999-01-01", "?at=nonsense")
        queries += ("?at=2024-01-01T00:30&as_of=2000-01-01", "?as_of=2100-01-01T00:00")
        for query in queries:
            fast = c.get(f"/v1/serving/f/prod{query}", headers=auth)
            sep = "&" if query else "?"
            documented = c.get(f"/v1/serving/f/prod{query}{sep}via=fastapi", headers=auth)
            assert fast.status_code == documented.status_code, query
            a, b = fast.json(), documented.json()
            for doc in (a, b):
                doc.get("freshness", {}).pop("checked_ms_ago", None)
                if "at=" not in query.replace("as_of=", ""):
                    doc.pop("at")  # "now" differs by the time between the two requests
            assert a == b, query
        assert c.get("/v1/serving/f/prod").status_code == 401  # the guard still runs first
        assert c.get("/v1/serving/f%2Fx/prod", headers=auth).status_code == 404


def test_the_api_on_kafka_answers_from_its_replica_and_sees_new_events(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.settings import Settings
    from keel_services.audit.http import create_app, replica_path

    prefix, ns = new_prefix(), f"api{time.time_ns()}:"
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    append(log, 0, 50)
    settings = Settings(
        home=tmp_path,
        project=tmp_path / "keel.toml",
        bus=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        views=f"{redis_url}?namespace={ns}",
    )
    try:
        with bootstrap(settings) as rt, TestClient(create_app(rt)) as c:
            first = c.get("/v1/serving/f/staging?at=2030-01-01").json()
            assert first["serving"]["model_id"] == f"{49:064x}"
            assert first["freshness"]["lag"] == 0
            assert replica_path(rt).exists() and rt.views.tracking("audit") == {}
            append(log, 50, 2)
            deadline = time.monotonic() + 60
            while c.get("/v1/serving/f/staging?at=2030-01-01").json()["serving"]["model_id"] != (
                f"{51:064x}"
            ):
                assert time.monotonic() < deadline, "the API's replica did not follow the log"
                time.sleep(0.05)
            later = c.get("/v1/why/f/staging?at=2030-01-01").json()
            assert later["freshness"]["lag"] == 0 and later["steps"][0]["step"] == "deployment"
    finally:
        log.close()
