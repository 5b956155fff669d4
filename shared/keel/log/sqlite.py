"""Embedded EventLog: one SQLite file in WAL mode. The default backend; no server.

Durability: each `append` is one transaction with synchronous=FULL, so a batch the call returned
for survives kill -9 and power loss. Offsets are the global sequence (rowid), shared by all
topics, with partition 0 everywhere. Reads page by rowid so a long read never holds a cursor open
across other writers' commits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from keel.errors import KeelError
from keel.log.port import LogRecord, OutgoingEvent, TopicPartition
from keel.log.records import record
from keel.sqlite_wal import enable_wal

_PAGE = 5000

_DDL = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    key TEXT NOT NULL,
    ts INTEGER NOT NULL,
    value BLOB NOT NULL,
    sig BLOB,
    recorded INTEGER
);
CREATE INDEX IF NOT EXISTS events_topic_seq ON events (topic, seq);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS consumer_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, part)
);
"""


def connect(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=timeout
    )
    enable_wal(conn, timeout)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


_Row = tuple[int, str, str, int, bytes, bytes | None, int | None]


def _rows(rows: list[_Row]) -> list[LogRecord]:
    return [record(t, 0, seq, k, ts, v, sig, rec or 0) for seq, t, k, ts, v, sig, rec in rows]


class LogLocked(KeelError):
    def __init__(self, path: Path, waited: float, exc: sqlite3.OperationalError) -> None:
        super().__init__(
            f"the event log {path} stayed locked by another writer for {waited:g} s ({exc})",
            hint="wait for the other keel command or service to finish (or stop it), then run "
            "this command again; it completes whatever this run stored without recording "
            "(raise KEEL_LOCK_TIMEOUT to wait longer)",
        )


class SqliteEventLog:
    def __init__(
        self, path: Path, lock_timeout: float = 30.0, clock: Callable[[], int] | None = None
    ) -> None:
        """clock: milliseconds now, for the recorded time (tests pass their own)."""
        self.path, self.lock_timeout = path, lock_timeout
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._conn = connect(path, lock_timeout)
        self._conn.executescript(_DDL)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(events)")}
        if "sig" not in columns:  # a log written before events were signed
            self._conn.execute("ALTER TABLE events ADD COLUMN sig BLOB")
        if "recorded" not in columns:  # a log written before it stamped recorded time
            self._conn.execute("ALTER TABLE events ADD COLUMN recorded INTEGER")

    def append(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        if not events:
            return []
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise LogLocked(self.path, self.lock_timeout, exc) from None
            try:
                row = cur.execute(
                    "SELECT seq, recorded FROM events ORDER BY seq DESC LIMIT 1"
                ).fetchone() or (0, 0)
                first = int(row[0] or 0) + 1
                # recorded time: the log's clock at append, never earlier than the last record's
                # (a clock stepping back must not reorder what was known when)
                recorded = max(self.clock(), int(row[1] or 0))
                cur.executemany(
                    "INSERT INTO events (seq, topic, key, ts, value, sig, recorded) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (first + i, e.topic, e.key, e.timestamp_ms, e.value, e.sig, recorded)
                        for i, e in enumerate(events)
                    ],
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return [
            LogRecord(e.topic, 0, first + i, e.key, e.timestamp_ms, e.value, e.sig, recorded)
            for i, e in enumerate(events)
        ]

    def _page(self, where: str, params: list[object]) -> list[_Row]:
        sql = (
            "SELECT seq, topic, key, ts, value, sig, recorded FROM events "
            f"WHERE {where} ORDER BY seq LIMIT {_PAGE}"
        )
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def read(
        self,
        topics: Sequence[str] | None = None,
        start: Mapping[TopicPartition, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[LogRecord]:
        starts = {t: o for (t, _p), o in (start or {}).items()}
        if not starts:
            return self._scan(topics, 0, starts, limit)
        # The first unread record of each topic (one index probe each; a topic without a start
        # position from its beginning): a reader that is caught up costs O(topics), not a scan
        # from its least recently written topic or from a topic it never read.
        names = list(topics) if topics is not None else self.topics()
        unread = self._first_unread({t: starts.get(t, 0) for t in names}, names)
        if unread is None:
            return iter(())
        return self._scan(topics, unread, starts, limit)

    def _first_unread(self, starts: Mapping[str, int], topics: Sequence[str]) -> int | None:
        firsts = []
        with self._lock:
            for t in topics:
                row = self._conn.execute(
                    "SELECT MIN(seq) FROM events WHERE topic = ? AND seq >= ?", [t, starts[t]]
                ).fetchone()
                if row[0] is not None:
                    firsts.append(int(row[0]))
        return min(firsts, default=None)

    def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        with self._lock:
            for t in topics:
                row = self._conn.execute(
                    "SELECT MAX(seq) FROM events WHERE topic = ?", [t]
                ).fetchone()
                if row[0] is not None:
                    out[(t, 0)] = int(row[0]) + 1
        return out

    def _scan(
        self,
        topics: Sequence[str] | None,
        seq: int,
        starts: Mapping[str, int],
        limit: int | None,
    ) -> Iterator[LogRecord]:
        topic_sql = ""
        topic_params: list[object] = []
        if topics is not None and len(topics) == 1:
            # one topic: its index gives its records in seq order
            topic_sql, topic_params = " AND topic = ?", list(topics)
        elif topics is not None:
            # Several: walk the table in seq order and skip the other topics' rows (~0.2 us a
            # row). Left to the planner, `topic IN (...)` read every topic's index from `seq` to
            # the log's end and sorted it for each page of 5000: 5 us a record at 200k events,
            # more as the log grows (decision 0030). The unary + keeps it off that index.
            topic_sql = f" AND +topic IN ({','.join('?' * len(topics))})"
            topic_params = list(topics)
        left = limit
        while True:
            page = self._page("seq >= ?" + topic_sql, [seq, *topic_params])
            rows = page
            if starts:  # filtered before records are built: a row skipped costs no record
                rows = [r for r in page if r[0] >= starts.get(r[1], 0)]
            if left is not None:
                rows = rows[:left]
                left -= len(rows)
            yield from _rows(rows)
            if len(page) < _PAGE or left == 0:
                return
            seq = page[-1][0] + 1

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT INTO consumer_offsets (grp, topic, part, next_offset) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (grp, topic, part) DO UPDATE SET next_offset = excluded.next_offset",
                [(group, t, p, o) for (t, p), o in positions.items()],
            )

    def committed(self, group: str) -> dict[TopicPartition, int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT topic, part, next_offset FROM consumer_offsets WHERE grp = ?", [group]
            ).fetchall()
        return {(t, p): o for t, p, o in rows}

    def subscribe(self, group: str, topics: Sequence[str]) -> SqliteSubscription:
        return SqliteSubscription(self, group, list(topics))

    def topics(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT topic FROM events ORDER BY topic").fetchall()
        return [r[0] for r in rows]

    def last_offset(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SqliteSubscription:
    """Follows new events by polling; `PRAGMA data_version`-free: a cheap indexed range query."""

    def __init__(self, log: SqliteEventLog, group: str, topics: list[str]) -> None:
        self._log = log
        self._group = group
        self._topics = topics
        committed = log.committed(group)
        self._next: dict[TopicPartition, int] = {(t, 0): committed.get((t, 0), 0) for t in topics}

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[LogRecord]:
        deadline = time.monotonic() + timeout
        while True:
            batch = list(self._log.read(self._topics, self._next, limit=max_records))
            if batch or time.monotonic() >= deadline:
                for rec in batch:
                    self._next[rec.tp] = rec.offset + 1
                return batch
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def commit(self) -> None:
        self._log.commit(self._group, self._next)

    def close(self) -> None:
        pass
