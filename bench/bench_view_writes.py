"""Where a fold's SQLite write stage goes (decision 0041): the batches a native fold of `--events`
(default the pipeline mix) hands ViewStore.apply, captured as the SQL rows SqliteViewStore
writes, then replayed into fresh live views (WAL, synchronous=FULL, the 64 MiB cache: as the
projector's store opens them) in variants, each timed (CPU of this process and wall):

    all        every row, as the product writes them into a file of SQLite's default page
               (4096: every views file made before decision 0041's "Page size (H5)")
    docs       only the documents (docs: key TEXT PRIMARY KEY, a rowid table + its key index)
    idx        only the index entries (idx WITHOUT ROWID + idx_score)
    sets       only the applied set (each event's ID, a random key)
    norowid    every row, docs as a WITHOUT ROWID table (one B-tree a document, not two)
    nofsync    every row, synchronous=NORMAL (the WAL fsynced at checkpoints only)
    bigcache   every row, a 512 MiB page cache
    page1k, page2k, page8k, page16k   every row, a new file of that page size (SQLite's default 4096)
    noscore    every row, without the idx_score index (answers need it; what it costs)
    batch20k   every row, four batches a transaction (the service's catch-up size, 0040)

--pages instead counts what each table's rows make SQLite write: each batch committed with the
automatic checkpoint off, the WAL's growth (the distinct pages the batch dirtied, each written
whole) read, then checkpointed and truncated; untimed.

Each variant replays the same captured batches, in the same order, one transaction a batch.
Variants alternate over --rounds. With --reads, each replayed file is then read back (reads())
so a variant that writes faster is seen not to answer slower. Results:
bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_projector import fill, signer_in
from bench.common import report
from keel.audit import keys as audit_keys
from keel.audit import view_queries
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Trust
from keel.views import sqlite as vs
from keel.views.port import IndexAdd, Put, SetAdd

Batch = list[tuple[str, list[tuple[Any, ...]]]]
KIND = {Put: "docs", IndexAdd: "idx", SetAdd: "sets"}
VARIANTS = (
    "all",
    "docs",
    "idx",
    "sets",
    "norowid",
    "nofsync",
    "bigcache",
    "page1k",
    "page8k",
    "noscore",
    "batch20k",
)
PAGE = {"page1k": 1024, "page2k": 2048, "page8k": 8192, "page16k": 16384}


def capture(n: int, mix: str, d: Path) -> list[Batch]:
    """The fold's batches as (table, rows) runs, rendered once as SqliteViewStore renders them."""
    codec = Codec(load_registry())
    signer = signer_in(d)
    log = SqliteEventLog(d / "log.db")
    fill(log, codec, n, signer, mix)
    views = vs.SqliteViewStore(d / "views-capture.db")
    batches: list[Batch] = []
    real = views.apply

    def apply(updates: Any, tracking: Any = None) -> None:
        out: Batch = []
        from itertools import groupby

        for kind, run in groupby(updates, key=type):
            out.append((KIND.get(kind, kind.__name__), vs._rows(kind, list(run))))
        batches.append(out)
        real(updates, tracking)

    views.apply = apply  # type: ignore[method-assign]
    trust = Trust(signer.trust.keys.values(), signer.trust.roles)
    Projector(log, views, codec, trust=trust, fold="native").run(checkpoint=False)
    views.close()
    return batches


SQL = {
    "docs": "INSERT OR REPLACE INTO docs VALUES (?, ?)",
    "idx": "INSERT OR REPLACE INTO idx VALUES (?, ?, ?)",
    "sets": "INSERT OR IGNORE INTO sets VALUES (?, ?)",
}


def replay(batches: list[Batch], variant: str, path: Path, read: bool = False) -> dict[str, float]:
    store = vs.SqliteViewStore(path, page_size=PAGE.get(variant, 0))
    db = store._db
    if variant == "norowid":
        db.execute("DROP TABLE docs")
        db.execute("CREATE TABLE docs (key TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID")
    if variant == "nofsync":
        db.execute("PRAGMA synchronous=NORMAL")
    if variant == "noscore":
        db.execute("DROP INDEX idx_score")
    if variant == "batch20k":
        batches = [
            [run for b in batches[i : i + 4] for run in b] for i in range(0, len(batches), 4)
        ]
    if variant == "bigcache":
        db.execute("PRAGMA cache_size=-524288")
    keep = {"docs": {"docs"}, "idx": {"idx"}, "sets": {"sets"}}.get(variant, set(SQL))
    t0, c0 = time.perf_counter(), time.process_time()
    for batch in batches:
        db.execute("BEGIN IMMEDIATE")
        for table, rows in batch:
            if table in keep:
                db.executemany(SQL[table], rows)
        db.execute("COMMIT")
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    store.close()
    size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    out = {"cpu_s": cpu, "wall_s": wall, "file_mb": size / 1e6}
    if read:
        out.update(reads(path))
    for f in path.parent.glob(path.name + "*"):
        f.unlink()
    return out


def reads(path: Path, sample: int = 20_000) -> dict[str, float]:
    """A read-heavy pass over a replayed views file, opened anew as a reader opens it (SQLite's
    page cache empty, the OS's warm), CPU and wall by part: `docs` every model's document and
    its evaluations, then `sample` random recorded events (ReadModel: a document by a random
    key); `caused` the same events' effects (an index range on a random name); `registry`
    every family's registry history paged through 50 at a time (index range + documents);
    `inventory` artifacts:* paged through 100 at a time (one long index range)."""
    store = vs.SqliteViewStore(path)
    db = store._db
    models = [k[6:] for (k,) in db.execute("SELECT key FROM docs WHERE key LIKE 'model:%'")]
    events = [k[6:] for (k,) in db.execute("SELECT key FROM docs WHERE key LIKE 'event:%'")]
    families = [
        n[9:] for (n,) in db.execute("SELECT DISTINCT name FROM idx WHERE name LIKE 'registry:%'")
    ]
    picked = random.Random(41).sample(events, min(sample, len(events)))
    rm = ReadModel(store)
    out: dict[str, float] = {}

    def timed(part: str, fn: Any) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out[f"read_{part}_cpu_s"] = time.process_time() - c0
        out[f"read_{part}_wall_s"] = time.perf_counter() - t0

    def docs() -> None:
        for m in models:
            assert rm.model(m) is not None
            rm.evaluations(m)
        for e in picked:
            rm.event(e)

    def caused() -> None:
        for e in picked:
            rm.caused(e)

    def registry() -> None:
        for f in families:
            offset = 0
            while page := view_queries.registry_history(store, f, offset=offset, limit=50):
                offset += len(page)

    def inventory() -> None:
        offset = 0
        while page := store.index_range(audit_keys.artifacts(), offset=offset, limit=100):
            offset += len(page)
            if offset >= 20_000:  # OFFSET scans from the start: a deep page costs its depth
                break

    for part, fn in (("docs", docs), ("caused", caused), ("registry", registry),
                     ("inventory", inventory)):  # fmt: skip
        timed(part, fn)
    out["read_cpu_s"] = sum(v for k, v in out.items() if k.endswith("_cpu_s"))
    out["read_wall_s"] = sum(v for k, v in out.items() if k.endswith("_wall_s"))
    out["read_models"], out["read_events"], out["read_families"] = (
        len(models),
        len(picked),
        len(families),
    )
    store.close()
    return out


def _family(index: str) -> str:
    """An index's family: artifacts (by kind and all), children, caused, or ordered (the
    registry, serving, skew, models and datasets: members or names that arrive in order)."""
    head = index.split(":", 1)[0]
    return head if head in ("artifacts", "children", "caused") else "ordered"


def pages(batches: list[Batch], table: str, path: Path) -> dict[str, Any]:
    """The WAL bytes each batch's `table` rows (or every row: "all") make SQLite write."""
    store = vs.SqliteViewStore(path)
    db = store._db
    db.execute("PRAGMA wal_autocheckpoint=0")
    wal = Path(str(path) + "-wal")
    per_batch = []
    for batch in batches:
        db.execute("BEGIN IMMEDIATE")
        for t, rows in batch:
            if table in ("all", t):
                db.executemany(SQL[t], rows)
            elif t == "idx" and table.startswith("idx:"):  # one index family's entries only
                db.executemany(SQL[t], [r for r in rows if _family(r[0]) == table[4:]])
        db.execute("COMMIT")
        per_batch.append(wal.stat().st_size if wal.exists() else 0)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    for f in path.parent.glob(path.name + "*"):
        f.unlink()
    return {"table": table, "wal_bytes": per_batch}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--mix", default="pipeline")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--name", default="view_writes")
    ap.add_argument("--pages", action="store_true", help="WAL bytes a batch by table, untimed")
    ap.add_argument("--reads", action="store_true", help="then a read pass on each replayed file")
    args = ap.parse_args(argv)
    n = args.events
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keel-bench-writes-") as d:
        batches = capture(n, args.mix, Path(d))
        if args.pages:
            tables = ("all", "docs", "idx", "sets", "idx:artifacts", "idx:children", "idx:caused",
                      "idx:ordered")  # fmt: skip
            for table in tables:
                out = pages(batches, table, Path(d) / f"views-pages-{table}.db")
                w = out["wal_bytes"]
                per_event = [round(b / (n / len(batches))) for b in w]
                print(table, "WAL bytes an event, batch by batch:", per_event[:: max(1, len(w) // 10)],
                      "total", round(sum(w) / n), flush=True)  # fmt: skip
                rows.append({**out, "events": n, "wal_bytes_per_event": sum(w) / n})
            report(args.name, f"WAL bytes a fold's batch writes by table, {n:,} events", rows, {})
            return
        for r in range(args.rounds):
            for variant in args.variants.split(","):
                out = replay(batches, variant, Path(d) / f"views-{variant}.db", args.reads)
                row = {"variant": variant, "round": r, "events": n, **out,
                       "cpu_us_per_event": out["cpu_s"] / n * 1e6,
                       "wall_us_per_event": out["wall_s"] / n * 1e6}  # fmt: skip
                print(row, os.getloadavg(), flush=True)
                rows.append(row)
    report(
        args.name,
        f"a fold's SQLite writes replayed by variant, {n:,} events, mix {args.mix}",
        rows,
        {"load_average": os.getloadavg(), "batches": len(batches)},
    )


if __name__ == "__main__":
    main()
