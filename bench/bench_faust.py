"""faust-streaming vs the plain batch loop, for the audit projector (decision 0007).

Same run, same topics, same broker, same Redis, same codec and the same pure fold:
  - consume + decode: Keel's log reader vs a faust agent (stream.take batches);
  - fold into Redis views (no chain): Projector(chain=False) vs a faust agent doing the same
    steps (decode, applied-set check, evolve, one MULTI/EXEC per batch);
  - the full projector (fold + chain) for reference.
faust's time runs from its first batch to its last (its group join and startup, ~1-2 s, are
left out, which favours faust). Needs the bench extra: pip install -e '.[bench]'.

    python -m bench.bench_faust [--events N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_projector import fill, raw_rate
from bench.common import kafka_and_redis, report
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.views.redis import RedisViewStore


def faust_rate(bootstrap: str, prefix: str, n: int, redis_url: str, mode: str) -> float:
    with tempfile.TemporaryDirectory(prefix="keel-bench-faust-") as d:
        result = Path(d) / "result.json"
        ns = f"faust{time.time_ns()}:"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.faust_worker",
                bootstrap,
                prefix,
                str(n),
                redis_url,
                ns,
                mode,
                str(result),
                str(Path(d) / "data"),
            ],
            check=False,
            timeout=600,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        RedisViewStore(redis_url, namespace=ns).clear()
        if not result.exists():
            raise SystemExit(f"the faust worker ({mode}) did not finish; run it by hand to see why")
        r = json.loads(result.read_text())
        return float(r["events"]) / float(r["seconds"])


def plain_fold_rate(log: KafkaEventLog, redis_url: str, codec: Codec, chain: bool) -> float:
    views = RedisViewStore(redis_url, namespace=f"plain{time.time_ns()}:")
    t0 = time.perf_counter()
    p = Projector(log, views, codec, trees=chain).run()
    rate = p.applied / (time.perf_counter() - t0)
    views.clear()
    return rate


def full_rate(bootstrap: str, redis_url: str, codec: Codec, n: int) -> float:
    """The whole projector, on a fresh copy of the events: a second run over the same topics
    would adopt the first run's chain (it continues from genesis) instead of writing one."""
    log = KafkaEventLog(bootstrap, prefix=new_prefix())
    fill(log, codec, n)
    rate = plain_fold_rate(log, redis_url, codec, chain=True)
    log.close()
    return rate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; medians reported")
    args = ap.parse_args(argv)
    codec = Codec(load_registry())
    rows: list[dict[str, Any]] = []
    with kafka_and_redis() as (bootstrap, redis_url):
        prefix = new_prefix()
        log = KafkaEventLog(bootstrap, prefix=prefix)
        fill(log, codec, args.events)
        runs: dict[str, list[float]] = {}
        for _ in range(args.repeat):  # interleaved, so drift on the machine hits both sides
            for name, fn in (
                ("plain_raw", lambda: raw_rate(log, codec)),
                (
                    "faust_raw",
                    lambda: faust_rate(bootstrap, prefix, args.events, redis_url, "decode"),
                ),
                ("plain_fold", lambda: plain_fold_rate(log, redis_url, codec, chain=False)),
                (
                    "faust_fold",
                    lambda: faust_rate(bootstrap, prefix, args.events, redis_url, "fold"),
                ),
                ("full", lambda: full_rate(bootstrap, redis_url, codec, args.events)),
            ):
                runs.setdefault(name, []).append(fn())
        log.close()
    plain_raw, faust_raw, plain_fold, faust_fold, full = (
        statistics.median(runs[k])
        for k in ("plain_raw", "faust_raw", "plain_fold", "faust_fold", "full")
    )
    rows = [
        {"step": "consume + decode", "plain_ev_per_s": plain_raw, "faust_ev_per_s": faust_raw},
        {
            "step": "fold -> Redis (no chain)",
            "plain_ev_per_s": plain_fold,
            "faust_ev_per_s": faust_fold,
        },
        {
            "step": "fold -> Redis + chain -> Kafka",
            "plain_ev_per_s": full,
            "faust_ev_per_s": float("nan"),
        },
    ]
    for r in rows:
        r["faust_over_plain"] = r["faust_ev_per_s"] / r["plain_ev_per_s"]
    report(
        "faust",
        f"faust-streaming agent vs plain loop, {args.events:,} events, Kafka -> Redis",
        rows,
        {"note": "faust timed from its first batch (startup excluded)", "runs": runs},
    )


if __name__ == "__main__":
    main()
