"""Registry operations on the embedded default, at histories of 1k and 100k promotions.

Recording a promotion = the ModelPromoted + ModelDeployed events appended durably to the SQLite
log (one transaction, synchronous=FULL) and folded into the read model (the audit views, an
incremental projector run); looking up the current prod model = the read model's serving
lookup (one index read and one document). Targets: promotion <= 1.5 ms p50, lookup
<= 0.2 ms p50, p50 at 100k <= 1.5x p50 at 1k. For scale, MLflow's registry on SQLite takes
~15 ms p50 to move an alias (reported, not measured here).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import report
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.events import envelope
from keel.events import generated as g
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.views.sqlite import SqliteViewStore

T0 = datetime(2020, 1, 1, tzinfo=UTC)


def promotion(i: int) -> list[g.ModelPromoted | g.ModelDeployed]:
    at = T0 + timedelta(minutes=i)
    model = f"{i:064x}"

    def env(kind: str) -> g.Envelope:
        return envelope(
            kind,
            subject="fam/prod",
            service="bench",
            code_version="c",
            actor="bench",
            correlation_id="b",
            occurred_at=at,
        )

    gate = g.GateResult(
        name="auc", metric="roc_auc", op=">=", threshold=0.9, value=0.95, passed=True, margin=0.05
    )
    return [
        g.ModelPromoted(
            envelope=env("ModelPromoted"),
            family="fam",
            model_id=model,
            env="prod",
            eval_report_id="e" * 64,
            metrics={"roc_auc": 0.95},
            gates=(gate,),
            incumbent_model_id=None,
            incumbent_metrics={},
            reason="bench",
        ),
        g.ModelDeployed(
            envelope=env("ModelDeployed"),
            family="fam",
            env="prod",
            model_id=model,
            manifest_id="m" * 64,
            kind="promotion",
        ),
    ]


def p50_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def p99_ms(xs: list[float]) -> float:
    return sorted(xs)[int(len(xs) * 0.99) - 1] * 1000


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--samples", type=int, default=500)
    args = ap.parse_args(argv)
    codec = Codec(load_registry())
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="keel-bench-registry-") as d:
            log = SqliteEventLog(Path(d) / "log.db")
            views = SqliteViewStore(Path(d) / "views.db")
            projector = Projector(log, views, codec, trees=False)
            read = ReadModel(views)
            for start in range(0, size, 1000):  # build the history in bulk
                events = [e for i in range(start, min(size, start + 1000)) for e in promotion(i)]
                log.append([to_outgoing(codec, e) for e in events])
            projector.run()
            record, lookup = [], []
            for k in range(args.samples):
                events = promotion(size + k)
                t0 = time.perf_counter()
                log.append([to_outgoing(codec, e) for e in events])
                projector.run(checkpoint=False)
                t1 = time.perf_counter()
                current = read.serving_now("fam", "prod")
                t2 = time.perf_counter()
                assert current is not None and current.model_id == events[0].model_id
                record.append(t1 - t0)
                lookup.append(t2 - t1)
            log.close()
            views.close()
        rows.append(
            {
                "history": size,
                "record_p50_ms": p50_ms(record),
                "record_p99_ms": p99_ms(record),
                "lookup_p50_ms": p50_ms(lookup),
                "lookup_p99_ms": p99_ms(lookup),
            }
        )
    if len(rows) > 1:
        for r in rows:
            r["record_p50_vs_smallest"] = r["record_p50_ms"] / rows[0]["record_p50_ms"]
    report(
        "registry",
        f"registry operations, embedded default, {args.samples} samples per size",
        rows,
        {"targets": "record <= 1.5 ms p50, lookup <= 0.2 ms p50, flat in history"},
    )


if __name__ == "__main__":
    main()
