"""What a fold into SQLite views writes, by key prefix (decision 0041, issue 37's write stage).

Folds `--events` of a mix (default: the retraining pipeline's, bench.pipeline_mix) from a signed
SQLite log into fresh SQLite views, through the projector as `keel audit project` does, and
tallies every batch ViewStore.apply is handed (instrumented here, not in the product):

    per key prefix (model, artifact, event, decision, open, ...): documents written, how many
    of them were already stored (a rewrite) or new, and the bytes of their canonical JSON;
    index entries (by index prefix) and applied-set members, as rows;
    the biggest documents' sizes at each tenth of the run (does any grow with history?).

Prints a table (markdown, for the decision record) and writes bench/results/<name>.json.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_projector import fill, signer_in
from bench.common import report
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Trust
from keel.views.docjson import dumps
from keel.views.port import IndexAdd, Put, SetAdd
from keel.views.sqlite import SqliteViewStore


def prefix(key: str) -> str:
    return key.split(":", 1)[0]


class Tally:
    """Every update a fold writes, by prefix; the sizes of the largest documents as it goes."""

    def __init__(self, views: SqliteViewStore) -> None:
        self.views = views
        self.docs: collections.Counter[str] = collections.Counter()
        self.rewrites: collections.Counter[str] = collections.Counter()
        self.bytes: collections.Counter[str] = collections.Counter()
        self.rewrite_bytes: collections.Counter[str] = collections.Counter()
        self.index: collections.Counter[str] = collections.Counter()
        self.sets = 0
        self.batches: list[dict[str, Any]] = []
        self.size: dict[str, int] = {}  # every document's last written size
        self.stored: set[str] = set()

    def apply(self, updates: Any, tracking: Any = None) -> None:
        batch_bytes, batch_docs, batch_rows = 0, 0, 0
        for u in updates:
            if isinstance(u, Put):
                n = len(dumps(u.doc))
                p = prefix(u.key)
                self.docs[p] += 1
                self.bytes[p] += n
                if u.key in self.stored:
                    self.rewrites[p] += 1
                    self.rewrite_bytes[p] += n
                self.stored.add(u.key)
                self.size[u.key] = n
                batch_bytes += n
                batch_docs += 1
            elif isinstance(u, IndexAdd):
                self.index[prefix(u.index)] += 1
                batch_rows += 1
            elif isinstance(u, SetAdd):
                self.sets += len(u.members)
                batch_rows += len(u.members)
        if batch_docs:
            self.batches.append({"docs": batch_docs, "doc_bytes": batch_bytes, "rows": batch_rows})
        self.views.__class__.apply(self.views, updates, tracking)

    def biggest(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.size.items(), key=lambda kv: -kv[1])[:n]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--mix", default="pipeline")
    ap.add_argument("--fold", default="native", choices=("native", "python"))
    ap.add_argument("--name", default="view_bytes")
    ap.add_argument("--batch", type=int, default=5000, help="the projector's batch size")
    args = ap.parse_args(argv)
    codec, n = Codec(load_registry()), args.events
    with tempfile.TemporaryDirectory(prefix="keel-bench-bytes-") as d:
        signer = signer_in(Path(d))
        log = SqliteEventLog(Path(d) / "log.db")
        fill(log, codec, n, signer, args.mix)
        views = SqliteViewStore(Path(d) / "views.db")
        tally = Tally(views)
        views.apply = tally.apply  # type: ignore[method-assign]
        growth: list[dict[str, Any]] = []
        trust = Trust(signer.trust.keys.values(), signer.trust.roles)
        p = Projector(log, views, codec, trust=trust, fold=args.fold, batch_size=args.batch)
        step = n // 10 * 5000 // args.batch
        t0 = time.process_time()
        # fold a tenth at a time (the projector's own batches inside) to see sizes grow
        fold_orig = p._fold
        seen = [0]

        def counted(*a: Any, **k: Any) -> Any:
            out = fold_orig(*a, **k)
            seen[0] = tally.docs.total()
            if len(tally.batches) % max(1, step // 5000) == 0 and len(growth) < 50:
                growth.append(
                    {
                        "batch": len(tally.batches),
                        "biggest": tally.biggest(3),
                        "docs_stored": len(tally.stored),
                    }
                )
            return out

        p._fold = counted  # type: ignore[method-assign]
        progress = p.run(checkpoint=False)
        cpu = time.process_time() - t0
        views.close() if hasattr(views, "close") else None
        db_bytes = sum(f.stat().st_size for f in Path(d).glob("views.db*"))
    applied = progress.applied
    total = sum(tally.bytes.values())
    rows = []
    for p_ in sorted(tally.bytes, key=lambda k: -tally.bytes[k]):
        rows.append(
            {
                "prefix": p_,
                "docs_per_event": tally.docs[p_] / applied,
                "rewrites_per_event": tally.rewrites[p_] / applied,
                "bytes_per_event": tally.bytes[p_] / applied,
                "rewrite_bytes_per_event": tally.rewrite_bytes[p_] / applied,
                "share": tally.bytes[p_] / total,
                "mean_doc_bytes": tally.bytes[p_] / tally.docs[p_],
            }
        )
    print(f"{applied:,} events, {len(tally.batches)} batches, {total / applied:.0f} B/event docs")
    print(
        "| prefix | docs/event | rewrites/event | B/event | rewrite B/event | share | mean doc B |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['prefix']} | {r['docs_per_event']:.3f} | {r['rewrites_per_event']:.3f} | "
            f"{r['bytes_per_event']:.0f} | {r['rewrite_bytes_per_event']:.0f} | "
            f"{r['share']:.1%} | {r['mean_doc_bytes']:.0f} |"
        )
    print("index rows/event:", {k: round(v / applied, 3) for k, v in tally.index.items()})
    print("applied-set rows/event:", round(tally.sets / applied, 3))
    b = tally.batches
    for i in (0, len(b) // 2, len(b) - 2):
        print(f"batch {i}: {b[i]}")
    for g_ in growth[:: max(1, len(growth) // 10)]:
        print(g_)
    print(f"views file {db_bytes / 1e6:.1f} MB, {db_bytes / applied:.0f} B/event; cpu {cpu:.1f}s")
    report(
        args.name,
        f"bytes a fold writes by key prefix, {n:,} events, mix {args.mix}, {args.fold}",
        rows,
        {
            "batches": tally.batches,
            "growth": growth,
            "index": dict(tally.index),
            "sets": tally.sets,
            "views_file_bytes": db_bytes,
        },
    )


if __name__ == "__main__":
    main()
