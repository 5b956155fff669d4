"""The fold with and without its prefetching reader (keel.audit.prefetch), alternating.

One signed log (SQLite; with --kafka also Kafka -> Redis) filled once, then folded into fresh
views by the native core (--fold) with KEEL_FOLD_PREFETCH=0 and =1 in turn, `--rounds` times
each: wall seconds and the process's CPU seconds (both threads), beside the raw loop.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from bench.bench_native_fold import backends, fold_stages
from bench.bench_projector import MIXES
from bench.common import report
from keel.audit import prefetch
from keel.codec import Codec
from keel.log.port import EventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer, Trust
from keel.views.port import ViewStore


def alternate(
    backend: str,
    log: EventLog,
    fresh_views: Callable[[str], ViewStore],
    codec: Codec,
    signer: Signer,
    raw: float,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    rows = []
    for i, on in enumerate(("0", "1") * args.rounds):
        os.environ[prefetch.PREFETCH_ENV] = on
        views = fresh_views(f"{on}-{i}")
        trust = Trust(signer.trust.keys.values(), signer.trust.roles)
        row = fold_stages(log, views, codec, trust, args.fold)
        out = {
            "backend": backend,
            "prefetch": on,
            "wall_s": row["wall_s"],
            "cpu_s": row["cpu_s"],
            "cpu_us_per_event": row["cpu_s"] / args.events * 1e6,
            "ev_per_s": row["ev_per_s"],
            "ratio": row["ev_per_s"] / raw,
            "load": os.getloadavg()[0],
        }
        print(out, flush=True)
        rows.append(out)
        views.clear()
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fold", default="native")
    ap.add_argument("--kafka", action="store_true")
    ap.add_argument("--mix", choices=MIXES, default="deployments")
    args = ap.parse_args(argv)
    codec, n = Codec(load_registry()), args.events
    rows: list[dict[str, Any]] = []
    for backend, log, views_for, signer, raw in backends(codec, n, args.mix, "prefetch", args):
        rows += alternate(backend, log, views_for, codec, signer, raw, args)
    report(
        f"prefetch_{args.mix}",
        f"the fold with/without its prefetching reader, {n:,} events, mix {args.mix}",
        rows,
        {"fold": args.fold, "load_average": os.getloadavg()},
    )


if __name__ == "__main__":
    main()
