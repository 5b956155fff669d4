"""Reading several topics of the embedded log walks the table once in log order (decision 0030).
Left to SQLite's planner, `topic IN (...) ORDER BY seq LIMIT 5000` read each requested topic's
index and sorted the lot for every page (5 us a record at 200k events against 1.6 us in log
order). Checked on the plans of the statements a read runs, not on time."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.log.port import OutgoingEvent
from keel.log.sqlite import SqliteEventLog

pytestmark = pytest.mark.integration

TOPICS = ["a", "b", "c"]


def _log(path: Path, n: int) -> SqliteEventLog:
    log = SqliteEventLog(path)
    for start in range(0, n, 5000):
        log.append(
            [
                OutgoingEvent(TOPICS[i % 3], f"k{i}", i, b"v" * 40)
                for i in range(start, min(n, start + 5000))
            ]
            + [OutgoingEvent("other", "x", 0, b"o")]  # a topic not read below
        )
    return log


def _plans(log: SqliteEventLog, topics: list[str]) -> list[str]:
    """The query plan of every page query a read of `topics` ran."""
    statements: list[str] = []
    log._conn.set_trace_callback(statements.append)
    try:
        records = list(log.read(topics))
    finally:
        log._conn.set_trace_callback(None)
    assert records
    pages = [s for s in statements if s.startswith("SELECT seq, topic")]
    assert pages
    out = []
    for sql in pages:
        rows = log._conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        out.append(" | ".join(str(r[-1]) for r in rows))
    return out


def test_a_read_of_several_topics_walks_the_log_in_order_without_sorting(tmp_path: Path) -> None:
    log = _log(tmp_path / "log.db", 12_000)
    try:
        for topics in (TOPICS, ["a", "other"]):
            for plan in _plans(log, topics):
                assert "TEMP B-TREE" not in plan, plan
                assert "PRIMARY KEY" in plan, plan  # the table itself, in seq order
        for plan in _plans(log, ["b"]):  # one topic: its index, already in seq order
            assert "TEMP B-TREE" not in plan and "events_topic_seq" in plan, plan
        # every requested record once, in log order, limits and starts kept
        offsets = [r.offset for r in log.read(TOPICS)]
        assert offsets == sorted(offsets) and len(set(offsets)) == 12_000
        assert [r.offset for r in log.read(["b"], limit=3)] == [2, 5, 8]
        assert {r.topic for r in log.read(["a", "other"])} == {"a", "other"}
        later = list(log.read(TOPICS, {("a", 0): 9000, ("b", 0): 0}, limit=7000))
        assert len(later) == 7000 and all(r.topic != "a" or r.offset >= 9000 for r in later)
    finally:
        log.close()
