"""Embedded SQLite log: batch append and sequential read of N ~300 B events.

Targets: append >= 100k events/s, read >= 200k events/s. Beside it, in the same run, the raw
sqlite3 floor: executemany into a bare table with no indexes, and a bare SELECT loop.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from bench.common import median, report, timed
from keel.log.port import OutgoingEvent
from keel.log.sqlite import SqliteEventLog


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n, b = args.events, args.batch
    value = b"v" * 300
    events = [
        OutgoingEvent(
            ("ingest", "training", "registry")[i % 3], f"s{i % 500}", 1_700_000_000_000 + i, value
        )
        for i in range(n)
    ]
    rows_raw = [(e.topic, e.key, e.timestamp_ms, e.value) for e in events]
    t: dict[str, list[float]] = {
        k: [] for k in ("keel_append", "keel_read", "raw_append", "raw_read")
    }
    with tempfile.TemporaryDirectory(prefix="keel-bench-log-") as d:
        for i in range(args.repeat):
            log = SqliteEventLog(Path(d) / f"log{i}.db")
            t["keel_append"] += timed(
                lambda lg=log: [lg.append(events[j : j + b]) for j in range(0, n, b)], 1
            )
            t["keel_read"] += timed(lambda lg=log: sum(1 for _ in lg.read()), 1)
            log.close()
            raw = sqlite3.connect(str(Path(d) / f"raw{i}.db"), isolation_level=None)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=FULL")
            raw.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, topic, key, ts, value)")

            def raw_append(c: sqlite3.Connection = raw) -> None:
                for j in range(0, n, b):
                    c.execute("BEGIN")
                    c.executemany(
                        "INSERT INTO e (topic, key, ts, value) VALUES (?, ?, ?, ?)",
                        rows_raw[j : j + b],
                    )
                    c.execute("COMMIT")

            t["raw_append"] += timed(raw_append, 1)
            t["raw_read"] += timed(
                lambda c=raw: sum(
                    1 for _ in c.execute("SELECT seq, topic, key, ts, value FROM e ORDER BY seq")
                ),
                1,
            )
            raw.close()
    m = {k: median(v) for k, v in t.items()}
    rows = [
        {
            "op": f"append (batches of {b})",
            "keel_ev_per_s": n / m["keel_append"],
            "raw_sqlite_ev_per_s": n / m["raw_append"],
            "ratio": m["raw_append"] / m["keel_append"],
            "target_ev_per_s": 100_000,
        },
        {
            "op": "sequential read",
            "keel_ev_per_s": n / m["keel_read"],
            "raw_sqlite_ev_per_s": n / m["raw_read"],
            "ratio": m["raw_read"] / m["keel_read"],
            "target_ev_per_s": 200_000,
        },
    ]
    report("sqlite_log", f"SQLite log, {n:,} events of ~300 B, median of {args.repeat}", rows)


if __name__ == "__main__":
    main()
