"""SQLite views keep index entries in a WITHOUT ROWID table (decision 0030); views made before
are converted when opened, their entries and answers unchanged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from keel.views.port import IndexAdd, Put, SetAdd, Tracking
from keel.views.sqlite import SqliteViewStore

pytestmark = pytest.mark.integration

# The tables as every views file before decision 0030 had them.
_OLD_DDL = """
CREATE TABLE docs (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE idx (
    name TEXT NOT NULL, member TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (name, member)
);
CREATE INDEX idx_score ON idx (name, score);
CREATE TABLE sets (
    name TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE TABLE tracking (
    projector TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (projector, topic, part)
);
"""


def _idx_sql(path: Path) -> str:
    db = sqlite3.connect(str(path))
    try:
        return str(db.execute("SELECT sql FROM sqlite_master WHERE name = 'idx'").fetchone()[0])
    finally:
        db.close()


def _schema(path: Path) -> set[str]:
    db = sqlite3.connect(str(path))
    try:
        return {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()


def test_a_new_store_keeps_index_entries_without_rowid(tmp_path: Path) -> None:
    SqliteViewStore(tmp_path / "views.db").close()
    assert "WITHOUT ROWID" in _idx_sql(tmp_path / "views.db")


def test_views_made_before_are_converted_with_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "views.db"
    db = sqlite3.connect(str(path))
    db.executescript(_OLD_DDL)
    db.executemany(
        "INSERT INTO idx VALUES (?, ?, ?)",
        [("serving:f:prod", f"m{i:03d}", float(i)) for i in range(300)]
        + [("artifacts:*", f"a{i:03d}", float(i % 7)) for i in range(50)],
    )
    db.execute("INSERT INTO docs VALUES ('artifact:a001', '{\"id\":\"a001\"}')")
    db.commit()
    before = {(n, m): s for n, m, s in db.execute("SELECT name, member, score FROM idx").fetchall()}
    db.close()
    assert "WITHOUT ROWID" not in _idx_sql(path)

    views = SqliteViewStore(path)
    try:
        assert "WITHOUT ROWID" in _idx_sql(path)
        assert {"idx", "idx_score", "docs", "sets", "tracking"} <= _schema(path)
        assert "idx_v2" not in _schema(path)
        snap = views.snapshot()
        after = {(n, m): s for n, entries in snap["indexes"].items() for m, s in entries.items()}
        assert after == before
        assert views.index_floor("serving:f:prod", 41.5) == ("m041", 41.0)
        assert views.index_range("artifacts:*", 6, 6, limit=3) == [
            ("a006", 6.0),
            ("a013", 6.0),
            ("a020", 6.0),
        ]
        assert views.get("artifact:a001") == {"id": "a001"}
        # and it folds on as before: a replaced entry moves, a new one lands
        views.apply(
            [
                IndexAdd("serving:f:prod", "m041", 1000.0),
                IndexAdd("serving:f:prod", "m300", 300.0),
                Put("x", {"y": 1}),
                SetAdd("s", ("e1",)),
            ],
            Tracking("audit", {("t", 0): 1}),
        )
        assert views.index_floor("serving:f:prod", 41.5) == ("m040", 40.0)
        assert views.index_range("serving:f:prod", 300, reverse=True) == [
            ("m041", 1000.0),
            ("m300", 300.0),
        ]
    finally:
        views.close()
    # opened again: nothing left to convert
    SqliteViewStore(path).close()
    assert "WITHOUT ROWID" in _idx_sql(path)
