"""Turning a SQLite file to WAL when other processes may be opening it at the same moment.

`PRAGMA journal_mode=WAL` answers "database is locked" at once, without waiting out the
connection's busy timeout, when another connection holds a write lock: the pragma takes a shared
lock and then needs an exclusive one, and SQLite refuses rather than wait in a shape that could
deadlock. Several `keel` processes started together on a brand-new home met exactly that (CI at
stop 43: one of six `keel keys record` failed). So the pragma is retried until `timeout`, the
wait the caller already chose for its locks."""

from __future__ import annotations

import sqlite3
import time

_PAUSE = 0.01  # first pause; doubles up to _MAX_PAUSE
_MAX_PAUSE = 0.2


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the file behind `conn` in WAL mode (a no-op when it already is), waiting at most
    `timeout` seconds for other connections' locks."""
    deadline = time.monotonic() + timeout
    pause = _PAUSE
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE)
