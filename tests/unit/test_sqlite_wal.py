"""CI at stop 43: one of six `keel keys record` started together on a new home failed in
`PRAGMA journal_mode=WAL` with "database is locked", at once, although its connection waits 30 s
for locks. SQLite refuses that pragma without calling the busy handler while another connection
holds a write lock. Opening the log (and the views, and the local artifact catalog) now waits
for the lock like any other statement."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from keel.log.sqlite import connect
from keel.sqlite_wal import enable_wal

pytestmark = pytest.mark.unit


def held_then_released(path: Path, seconds: float) -> threading.Event:
    """Another connection creating a table in a write transaction on a new file, committing
    after `seconds`; the event is set once the lock is held."""
    held = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(str(path), isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TABLE t (a)")
        held.set()
        threading.Event().wait(seconds)
        db.execute("COMMIT")
        db.close()

    threading.Thread(target=writer, daemon=True).start()
    assert held.wait(10)
    return held


def test_opening_the_log_waits_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    held_then_released(path, 0.3)
    conn = connect(path, timeout=30)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_lock_held_past_the_timeout_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    held_then_released(path, 3)
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=0.2)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(conn, 0.2)
