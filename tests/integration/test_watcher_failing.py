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
