"""Redis ViewStore.apply (MULTI/EXEC batches with tracking) vs raw pipelined redis-py SETs of the
same JSON documents, same server, same run. Target: >= 0.5x raw."""

from __future__ import annotations

import argparse
import json
import uuid

from bench.common import kafka_and_redis, median, report, timed
from keel.views.port import Put, Tracking
from keel.views.redis import RedisViewStore


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--updates", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n, b = args.updates, args.batch
    docs = [
        (f"model:{i}", {"model_id": f"{i:064x}", "env": "prod", "since": 1_700_000_000_000 + i})
        for i in range(n)
    ]
    import redis

    t: dict[str, list[float]] = {"raw": [], "keel": []}
    with kafka_and_redis() as (_, url):
        r = redis.Redis.from_url(url)
        for _ in range(args.repeat):
            ns = f"b{uuid.uuid4().hex[:8]}:"

            def raw(ns: str = ns) -> None:
                for j in range(0, n, b):
                    pipe = r.pipeline(transaction=False)
                    for k, d in docs[j : j + b]:
                        pipe.set(
                            f"raw{ns}{k}", json.dumps(d, sort_keys=True, separators=(",", ":"))
                        )
                    pipe.execute()

            views = RedisViewStore(url, namespace=ns)

            def keel(v: RedisViewStore = views) -> None:
                for j in range(0, n, b):
                    v.apply(
                        [Put(k, d) for k, d in docs[j : j + b]],
                        Tracking("bench", {("t", 0): j + b}),
                    )

            t["raw"] += timed(raw, 1)
            t["keel"] += timed(keel, 1)
            r.flushdb()
            views.close()
    m = {k: median(v) for k, v in t.items()}
    rows = [
        {
            "op": f"apply {n:,} updates, batches of {b}",
            "raw_upd_per_s": n / m["raw"],
            "keel_upd_per_s": n / m["keel"],
            "ratio": m["raw"] / m["keel"],
        }
    ]
    report(
        "redis_views",
        f"Redis ViewStore vs raw pipelined SETs, median of {args.repeat}",
        rows,
        {"target": "ratio >= 0.5"},
    )


if __name__ == "__main__":
    main()
