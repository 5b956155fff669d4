"""Decisions of many promotions in one family/env, folded by both cores (views shape 6).

Shape 5 kept every concluded promotion of a family/env in `open:{family}:{env}` and rewrote
it on every decision, so a decision's cost grew with the family/env's history (146-215 us of
CPU an event at 5,000 promotions). This folds `--promotions` promotions (each pending,
reviewed, then promoted or declined; every 50th left waiting) of one family/env, with
`--stats` ServingStatsRecorded windows between them, into fresh SQLite views, by the Python
core (projection.evolve) and the native one (keel_fold), and prints per core the CPU us an
event of the core's evolve (documents read included) and of the views' write, the stored size
of the waiting list, the share of events the native core folded itself, and the load average.

    .venv/bin/python -m bench.bench_promotions --promotions 5000 --stats 0
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keel import signing
from keel.audit import foldcore
from keel.codec import Codec
from keel.events import envelope
from keel.events import generated as g
from keel.log.port import LogRecord
from keel.schemas.registry import load_registry
from keel.views import docjson
from keel.views.sqlite import SqliteViewStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
BATCH = 500


def _env(kind: str, eid: str, i: int) -> g.Envelope:
    return envelope(kind, subject="fam", service="bench", code_version="c", actor="ann",
                    correlation_id="r", occurred_at=T0 + timedelta(seconds=i), event_id=eid)  # fmt: skip


def events(promotions: int, stats: int) -> list[Any]:
    out: list[Any] = []
    for i in range(promotions):
        pid, model = f"p{i}", f"m{i}"
        common = dict(family="fam", model_id=model, env="prod")
        gated = dict(eval_report_id="r", metrics={"f1": 0.9}, gates=[], incumbent_metrics={})
        out.append(g.PromotionPending(envelope=_env("PromotionPending", pid, i), **common,
                                      **gated, reason="why", approvals_required=1))  # fmt: skip
        out.append(g.PromotionReviewed(envelope=_env("PromotionReviewed", f"{pid}-r", i),
                                       **common, pending_event_id=pid, verdict="approved",
                                       reason="ok"))  # fmt: skip
        if i % 50 == 49:
            pass  # left waiting
        elif i % 2:
            out.append(g.PromotionReviewed(envelope=_env("PromotionReviewed", f"{pid}-x", i),
                                           **common, pending_event_id=pid, verdict="rejected",
                                           reason="no"))  # fmt: skip
        else:
            out.append(g.ModelPromoted(envelope=_env("ModelPromoted", f"{pid}-p", i), **common,
                                       **gated, reason="ok", pending_event_id=pid))  # fmt: skip
        for j in range(stats):
            end = (T0 + timedelta(seconds=i, milliseconds=j + 1)).isoformat()
            body = {"x": {"mean": 0.5 + j, "p50": 0.25, "n": 100}, "y": {"mean": -0.0}}
            out.append(g.ServingStatsRecorded(envelope=_env("ServingStatsRecorded",
                       f"{pid}-s{j}", i), family="fam", env="prod", model_id=model,
                       window_start=T0.isoformat(), window_end=end, requests=100 + j,
                       stats_json=json.dumps(body)))  # fmt: skip
    return out


def records(codec: Codec, evs: list[Any]) -> list[LogRecord]:
    base = int(T0.timestamp() * 1000)
    return [
        LogRecord("registry", 0, i, "fam", base + i, codec.encode(e.EVENT_TYPE, e.to_avro()),
                  None, recorded_ms=base + i)
        for i, e in enumerate(evs)
    ]  # fmt: skip


def run(core: foldcore.PythonCore, recs: list[LogRecord], root: Path) -> dict[str, Any]:
    views = SqliteViewStore(root / f"{core.name}.db")
    evolve = write = 0.0
    for start in range(0, len(recs), BATCH):
        t = time.process_time()
        decoded = core.decode_fold(recs[start : start + BATCH])
        index, puts = core.evolve(decoded, [(d, False) for d in decoded], views)
        t2 = time.process_time()
        views.apply([*index, *puts])
        write += time.process_time() - t2
        evolve += t2 - t
    n = len(recs)
    out = {
        "core": core.name,
        "events": n,
        "evolve_us": round(evolve / n * 1e6, 1),
        "write_us": round(write / n * 1e6, 1),
        "open_bytes": len(docjson.dumps(views.get("open:fam:prod"))),
    }
    fold = getattr(core, "_fold", None)
    if fold is not None:
        out["native_share"] = round(fold.folded / n, 3)
    views.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--promotions", type=int, default=5000)
    ap.add_argument("--stats", type=int, default=0, help="ServingStatsRecorded per promotion")
    args = ap.parse_args()
    codec = Codec(load_registry())
    recs = records(codec, events(args.promotions, args.stats))
    with tempfile.TemporaryDirectory() as tmp:
        for kind in (foldcore.PythonCore, foldcore.NativeCore):
            print(json.dumps(run(kind(codec, signing.Trust()), recs, Path(tmp))))
    print(json.dumps({"loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
