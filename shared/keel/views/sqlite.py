"""Embedded ViewStore: SQLite tables; `apply` is one transaction."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path
from typing import Any

from keel.log.port import TopicPartition
from keel.sqlite_wal import enable_wal
from keel.views.docjson import dumps, loads
from keel.views.memory import DEFAULT_BUDGET_MB, MemoryViewStore, Rows, budget_bytes
from keel.views.port import (
    Around,
    IndexAdd,
    IndexRemove,
    Put,
    Remove,
    SetAdd,
    SetRemove,
    StaleTracking,
    Tracking,
    Update,
    member_key,
)

_SCORE_INDEX = "CREATE INDEX IF NOT EXISTS idx_score ON idx (name, score);"
_DDL = f"""
CREATE TABLE IF NOT EXISTS docs (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idx (
    name TEXT NOT NULL, member TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (name, member)
) WITHOUT ROWID;
{_SCORE_INDEX}
CREATE TABLE IF NOT EXISTS sets (
    name TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tracking (
    projector TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (projector, topic, part)
);
"""

# Index entries were a rowid table until decision 0030: three B-trees per entry (the rows, the
# primary key's index, idx_score); WITHOUT ROWID drops the first (the primary key holds the
# rows), which made a fold's writes ~10-20% cheaper. Older views are converted when opened.
_IDX_V2 = """
CREATE TABLE idx_v2 (
    name TEXT NOT NULL, member TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (name, member)
) WITHOUT ROWID;
INSERT INTO idx_v2 SELECT name, member, score FROM idx;
DROP TABLE idx;
ALTER TABLE idx_v2 RENAME TO idx;
CREATE INDEX idx_score ON idx (name, score);
"""


_SQL: dict[type, str] = {
    Put: "INSERT OR REPLACE INTO docs VALUES (?, ?)",
    Remove: "DELETE FROM docs WHERE key = ?",
    IndexAdd: "INSERT OR REPLACE INTO idx VALUES (?, ?, ?)",
    IndexRemove: "DELETE FROM idx WHERE name = ? AND member = ?",
    SetAdd: "INSERT OR IGNORE INTO sets VALUES (?, ?)",
    SetRemove: "DELETE FROM sets WHERE name = ? AND member = ?",
}


def _rows(kind: type, run: Iterable[Any]) -> list[tuple[Any, ...]]:
    if kind is Put:
        return [(u.key, dumps(u.doc).decode()) for u in run]
    if kind is Remove:
        return [(u.key,) for u in run]
    if kind is IndexAdd:
        return [(u.index, u.member, u.score) for u in run]
    if kind is SetAdd or kind is SetRemove:
        return [(u.name, m) for u in run for m in u.members]
    return [(u.index, u.member) for u in run]


def _is_rowid_idx(db: sqlite3.Connection) -> bool:
    sql = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'idx'"
    row = db.execute(sql).fetchone()
    return row is not None and "WITHOUT ROWID" not in row[0].upper()


def _convert_idx(db: sqlite3.Connection) -> None:
    """Views made before decision 0030 keep index entries in a rowid table: copy them into the
    WITHOUT ROWID one, in one transaction (a crash leaves the old table whole; the next open
    converts again). Checked again under the write lock: another process may have done it."""
    if not _is_rowid_idx(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _is_rowid_idx(db):
            for statement in _IDX_V2.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# A views file being built by a fold from the log's beginning (decision 0034): most of its
# B-trees stay in this page cache up to ~1M events (the views are ~1.1 GB then), so fewer of
# the fold's random inserts re-read a page from the OS, and the file came out 20% smaller than
# with 64 MB (less to copy over the views). SQLite allocates the cache as pages are used: a
# small rebuild stays small.
_BUILD_CACHE_KIB = 1024 * 1024
_LIVE_CACHE_KIB = 65536

# A new live views file's page size (SQLite's default: 4096). A fold's random-key rows each
# dirty a page once the B-trees outgrow the batch; larger pages mean fewer levels and splits.
# Decision 0041, "Page size (H5)", quiet (load ~1), alternated with 4096, CPU of the pipeline
# mix's writes replayed: 200k -2..-27% in 7 of 7 rounds, 1M -4/-19/-22%; the read-heavy pass
# after each -5..-8% at 1M (±10% at 200k). 16 KiB wrote as fast but read 17-33% slower at 1M
# (a random document costs a whole page). A file that exists keeps the page size it was made
# with (SQLite changes it only by a VACUUM, which a WAL file refuses); `building` files (a
# rebuild's spill, copied row by row into the views) keep SQLite's default: not measured.
NEW_PAGE_SIZE = 8192


class SqliteViewStore:
    def __init__(self, path: Path, *, building: bool = False, page_size: int | None = None) -> None:
        """building: a file only this store reads until `replace_from` copies it into the live
        views (see `rebuilding`): no journal, no fsync, a large page cache; page_size: a new
        file's (None: NEW_PAGE_SIZE for live views, SQLite's default for `building`; 0:
        SQLite's default). An existing file keeps its own."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30
        )
        if page_size is None:
            page_size = 0 if building else NEW_PAGE_SIZE
        if page_size:
            self._db.execute(f"PRAGMA page_size={int(page_size)}")
        if building:
            # A crash loses only this file (the live views stay whole): neither a rollback
            # journal nor the WAL's second copy of every page, nor an fsync per batch, buys
            # anything here.
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(f"PRAGMA cache_size=-{_BUILD_CACHE_KIB}")
            # Index entries by score are read by answers, never by a fold: built once at the
            # end (`finish`: one sort) instead of one more random B-tree insert an entry.
            self._db.executescript(_DDL.replace(_SCORE_INDEX, ""))
            return
        enable_wal(self._db, 30)
        self._db.execute("PRAGMA synchronous=FULL")
        # A projector batch inserts thousands of random keys (event IDs, artifact IDs), each in
        # a different page; checkpointing the WAL every 1000 pages (the default) rewrote the
        # same pages over and over. 20000 pages (~80 MB of WAL) made a 300k-event fold ~12%
        # faster (decision 0008).
        self._db.execute("PRAGMA wal_autocheckpoint=20000")
        # A fold's inserts land on random pages of B-trees that outgrow the default 2 MB page
        # cache by 1M events; re-reading those pages from the OS cost ~20-30% of the writes
        # (decision 0030). Allocated only as pages are used: a reader of a few documents
        # stays small.
        self._db.execute(f"PRAGMA cache_size=-{_LIVE_CACHE_KIB}")
        self._db.executescript(_DDL)
        _convert_idx(self._db)

    def apply(self, updates: Sequence[Update], tracking: Tracking | None = None) -> None:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if tracking is not None and tracking.since is not None:
                    stored = {
                        (t, p): o
                        for t, p, o in cur.execute(
                            "SELECT topic, part, next_offset FROM tracking WHERE projector = ?",
                            [tracking.projector],
                        )
                    }
                    if stored != dict(tracking.since):
                        raise StaleTracking(tracking.projector)
                # Consecutive updates of one kind go in one executemany; order is kept.
                for kind, run in groupby(updates, key=type):
                    cur.executemany(_SQL[kind], _rows(kind, run))
                if tracking is not None:
                    cur.executemany(
                        "INSERT OR REPLACE INTO tracking VALUES (?, ?, ?, ?)",
                        [(tracking.projector, t, p, o) for (t, p), o in tracking.positions.items()],
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT doc FROM docs WHERE key = ?", [key]).fetchone()
        return None if row is None else dict(loads(row[0]))

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [None if d is None else dict(loads(d)) for d in self.get_many_raw(keys)]

    def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        found: dict[str, bytes] = {}
        with self._lock:
            for i in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
                chunk = list(keys[i : i + 500])
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT key, CAST(doc AS BLOB) FROM docs WHERE key IN ({marks})", chunk
                    )
                )
        return [found.get(k) for k in keys]

    def contains(self, name: str, members: Sequence[str]) -> list[bool]:
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(members), 500):
                chunk = list(members[i : i + 500])
                marks = ",".join("?" * len(chunk))
                found.update(
                    m
                    for (m,) in self._db.execute(
                        f"SELECT member FROM sets WHERE name = ? AND member IN ({marks})",
                        [name, *chunk],
                    )
                )
        return [m in found for m in members]

    def members(self, name: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT member FROM sets WHERE name = ? ORDER BY member", [name]
            ).fetchall()
        return [m for (m,) in rows]

    def index_range(
        self,
        index: str,
        low: float = float("-inf"),
        high: float = float("inf"),
        offset: int = 0,
        limit: int = 100,
        reverse: bool = False,
    ) -> list[tuple[str, float]]:
        order = "DESC" if reverse else "ASC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT member, score FROM idx WHERE name = ? AND score >= ? AND score <= ? "
                f"ORDER BY score {order}, member {order} LIMIT ? OFFSET ?",
                [index, low, high, limit, offset],
            ).fetchall()
        return [(m, float(s)) for m, s in rows]

    def index_floor(self, index: str, score: float) -> tuple[str, float] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT member, score FROM idx WHERE name = ? AND score <= ? "
                "ORDER BY score DESC, member DESC LIMIT 1",
                [index, score],
            ).fetchone()
        return None if row is None else (row[0], float(row[1]))

    def index_around(
        self, index: str, score: float
    ) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
        with self._lock:
            below = self._db.execute(
                "SELECT member, score FROM idx WHERE name = ? AND score <= ? "
                "ORDER BY score DESC, member DESC LIMIT 1",
                [index, score],
            ).fetchone()
            above = self._db.execute(
                "SELECT member, score FROM idx WHERE name = ? AND score > ? "
                "ORDER BY score ASC, member ASC LIMIT 1",
                [index, score],
            ).fetchone()
        return (
            (below[0], float(below[1])) if below else None,
            (above[0], float(above[1])) if above else None,
        )

    def index_around_docs(self, index: str, score: float, prefix: str) -> Around:
        below, above = self.index_around(index, score)
        keys = [prefix + member_key(e[0]) if e else "" for e in (below, above)]
        return below, above, self.get_many(keys)

    def tracking(self, projector: str) -> dict[TopicPartition, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT topic, part, next_offset FROM tracking WHERE projector = ?", [projector]
            ).fetchall()
        return {(t, p): o for t, p, o in rows}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            docs = {k: loads(d) for k, d in self._db.execute("SELECT key, doc FROM docs")}
            idx: dict[str, dict[str, float]] = {}
            for name, member, score in self._db.execute("SELECT name, member, score FROM idx"):
                idx.setdefault(name, {})[member] = float(score)
            sets: dict[str, set[str]] = {}
            for name, member in self._db.execute("SELECT name, member FROM sets"):
                sets.setdefault(name, set()).add(member)
            trk: dict[str, dict[str, int]] = {}
            for p, t, part, o in self._db.execute(
                "SELECT projector, topic, part, next_offset FROM tracking"
            ):
                trk.setdefault(p, {})[f"{t}/{part}"] = int(o)
        return {"docs": docs, "indexes": idx, "sets": sets, "tracking": trk}

    @contextmanager
    def rebuilding(self, budget_mb: float = DEFAULT_BUDGET_MB) -> Iterator[MemoryViewStore]:
        """Empty views in memory for a fold from the log's beginning (`keel audit rebuild`);
        `replace_from` then writes them over these views in one transaction. Past the memory
        budget (keel.views.memory) they spill into a fresh file beside these views (built fast:
        `building`), removed when the block is left, whatever happened; one a killed rebuild
        left is removed by the next."""
        for left in self.path.parent.glob(f"{self.path.name}.rebuild-*"):
            if not _alive(left.name.rsplit("-", 1)[-1]):
                left.unlink(missing_ok=True)
        path = self.path.with_name(f"{self.path.name}.rebuild-{os.getpid()}")
        path.unlink(missing_ok=True)
        made: list[SqliteViewStore] = []

        def spill() -> SqliteViewStore:
            made.append(SqliteViewStore(path, building=True))
            return made[-1]

        try:
            yield MemoryViewStore(budget=budget_bytes(budget_mb), spill=spill)
        finally:
            for store in made:
                store.close()
            path.unlink(missing_ok=True)

    def write_rows(self, rows: Rows) -> None:
        """Rows in key order (a MemoryViewStore's spill) into these views, one transaction;
        None/False rows remove what an earlier spill wrote."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                _write_rows(cur, rows)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def finish(self) -> None:
        """What a `building` store deferred (the index by score), done."""
        with self._lock:
            self._db.execute(_SCORE_INDEX)

    def replace_from(self, fresh: MemoryViewStore) -> None:
        """These views become `fresh`'s, in ONE write transaction of these views: every table
        emptied and written again in key order (B-trees built by appends), the index by score
        dropped and built after the rows (one sort). Every connection to them, in any process,
        reads the old views or the new, never a mix (WAL snapshots), and a crash before the
        commit leaves the old whole (WAL frames without a commit are ignored). If `fresh`
        spilled into a file (memory budget), the rest is spilled too and the rows are copied
        from that file. The WAL is then checkpointed and truncated (it held the whole views).
        Decision 0034: faster than writing a fresh file and copying it over these (the copy
        wrote everything a third time)."""
        spilled = fresh.spilled
        if spilled is not None:
            fresh.spill()
            assert isinstance(spilled, SqliteViewStore)
        rows = fresh.rows()  # tracking (the rest is empty if spilled)
        with self._lock:
            cur = self._db.cursor()
            # the transaction's pages held until its commit, not spilled into the WAL on the
            # way (64 MB: measured slower than a fresh file copied over; decision 0034)
            cur.execute(f"PRAGMA cache_size=-{_BUILD_CACHE_KIB}")
            if spilled is not None:
                cur.execute("ATTACH DATABASE ? AS fresh", [str(spilled.path)])
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    cur.execute("DROP INDEX IF EXISTS idx_score")
                    for table in ("docs", "idx", "sets", "tracking"):
                        cur.execute(f"DELETE FROM {table}")
                    if spilled is not None:
                        for table, order in _KEYS.items():
                            cur.execute(
                                f"INSERT INTO main.{table} SELECT * FROM fresh.{table} "
                                f"ORDER BY {order}"
                            )
                    _write_rows(cur, rows, into_empty=spilled is None)
                    cur.execute(_SCORE_INDEX)
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            finally:
                if spilled is not None:
                    cur.execute("DETACH DATABASE fresh")
                cur.execute(f"PRAGMA cache_size=-{_LIVE_CACHE_KIB}")  # and the memory freed
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def copy_from(self, built: SqliteViewStore) -> None:
        """These views become a copy of the file `built` (SQLite's backup into a WAL database,
        one transaction; equal page sizes needed): decision 0034's first rebuild, kept for
        bench_rebuild's comparison."""
        built.finish()
        with self._lock, built._lock:
            built._db.backup(self._db)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def clear(self) -> None:
        with self._lock:
            self._db.executescript(
                "DELETE FROM docs; DELETE FROM idx; DELETE FROM sets; DELETE FROM tracking;"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


_KEYS = {"docs": "key", "idx": "name, member", "sets": "name, member"}


def _write_rows(cur: sqlite3.Cursor, rows: Rows, *, into_empty: bool = False) -> None:
    """Rows in key order; into empty tables plain inserts (no row to replace, none to remove)."""
    put = "INSERT INTO" if into_empty else "INSERT OR REPLACE INTO"
    # documents as TEXT, as `apply` stores them (decoded one at a time, not all held twice)
    cur.executemany(
        f"{put} docs VALUES (?, ?)", ((k, d.decode()) for k, d in rows.docs if d is not None)
    )
    cur.executemany(f"{put} idx VALUES (?, ?, ?)", (r for r in rows.idx if r[2] is not None))
    cur.executemany(f"{put} sets VALUES (?, ?)", ((n, m) for n, m, p in rows.sets if p))
    cur.executemany(f"{put} tracking VALUES (?, ?, ?, ?)", rows.tracking)
    if not into_empty:
        cur.executemany("DELETE FROM docs WHERE key = ?", [(k,) for k, d in rows.docs if d is None])
        cur.executemany(
            "DELETE FROM idx WHERE name = ? AND member = ?",
            [(n, m) for n, m, s in rows.idx if s is None],
        )
        cur.executemany(
            "DELETE FROM sets WHERE name = ? AND member = ?",
            [(n, m) for n, m, p in rows.sets if not p],
        )


def _alive(pid: str) -> bool:
    """Whether process `pid` (a rebuild file's suffix) still runs; not a number: not ours."""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
