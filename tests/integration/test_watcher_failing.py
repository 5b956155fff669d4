"""Issue 35: a views watcher whose every fold fails used to send no first state, so the audit
API's start (which waits for it) blocked for ever. Now the start returns at the first failure
and every answer's freshness says why it is stale and by how much. Real SQLite, a real
watcher process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from keel.audit.freshness import WatchedViews
from keel.bootstrap import bootstrap, to_outgoing
from keel.settings import Settings
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.integration


def test_a_watcher_whose_every_fold_fails_starts_and_says_why(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", project=tmp_path / "keel.toml")
    with bootstrap(settings) as rt:
        rt.log.append([to_outgoing(rt.codec, e) for i in range(5) for e in events(i)])
    # a replica whose documents table is not the views' (left by another program, say): it
    # opens, and every fold into it fails
    replica = tmp_path / "replica.db"
    db = sqlite3.connect(replica)
    db.execute("CREATE TABLE docs (key TEXT PRIMARY KEY, other TEXT)")
    db.commit()
    db.close()
    watched = WatchedViews(settings, replica)  # returned: before, it waited for ever
    try:
        fresh = watched.check().as_dict()
        assert "the views replica is not being folded" in fresh["error"], fresh
        assert "no such column: doc" in fresh["error"]  # the cause, as SQLite said it
        assert fresh["lag"] >= 10  # none of the 10 events is in it, and it says so
        assert not watched.ready
    finally:
        watched.close()


def test_an_audit_api_whose_replica_never_folds_starts_and_answers_saying_why(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """The audit API on Kafka with no projector views and no snapshot waits for its replica's
    first state; its every fold fails here (a replica that refuses writes), yet it starts and
    each answer's freshness says why it is stale and the headers how much."""
    from fastapi.testclient import TestClient

    from keel.views.sqlite import SqliteViewStore
    from keel_services.audit.http import create_app, replica_path
    from tests.integration.test_audit_snapshot import settings_of
    from tests.integration.test_checkpoint_guard_kafka import signed_log

    (tmp_path / "trail").mkdir()
    _s, env = signed_log(kafka_bootstrap, redis_url, tmp_path / "trail", 6)
    settings = settings_of(env).model_copy(
        update={"home": tmp_path / "pod", "views": env["KEEL_VIEWS"] + "none:"}
    )
    (tmp_path / "pod").mkdir()
    with bootstrap(settings) as rt:
        replica = replica_path(rt)
        replica.parent.mkdir(parents=True)
        SqliteViewStore(replica).close()  # the views' own tables, then every write refused
        db = sqlite3.connect(replica)
        db.execute(
            "CREATE TRIGGER refused BEFORE INSERT ON docs "
            "BEGIN SELECT RAISE(ABORT, 'this replica takes no writes'); END"
        )
        db.commit()
        db.close()
        with TestClient(create_app(rt)) as api:  # before: never returned
            r = api.get("/v1/serving/f/staging?at=2030-01-01")
    fresh = r.json()["freshness"]
    assert "this replica takes no writes" in fresh["error"], fresh
    assert fresh["source"] == "replica" and fresh["lag"] >= 12  # the 12 events it misses
    assert r.headers["keel-lag"] == str(fresh["lag"])
