"""The audit projector's two fold cores (decision 0027), stage by stage, beside the raw loop.

For each backend (SQLite log -> SQLite views; with --kafka, Kafka -> Redis) the same signed
log is folded into fresh views by the Python fold and by the native one (keel_fold), with
signatures and trees on, no checkpoint. Each run's seconds are split by stage:

    read       iterating the log (the backend's reader: rows or messages into LogRecords),
               with the batching around it: the run's CPU outside the fold and the write.
               Taken as that remainder since session 15: timing each record (two clock
               reads, ~0.3-0.55 us of CPU each) added ~1 us an event to read and to the
               total of every earlier figure
    decode     Avro bytes -> events (fastavro + generated classes; natively: keel_fold's
               values, kept in Rust: decision 0027)
    trees      leaf hashes and frontiers
    signatures chunk signature checks (Ed25519) and role checks
    evolve     the rest of the fold: duplicates, documents read, `evolve`, the batch's updates
               (of which evolve_core: the core's evolve alone, documents read included;
               natively keel_fold.Fold, with `native_share` of the events folded in Rust)
    write      ViewStore.apply (views, applied set, tracking, trees)

beside the raw client loop (sqlite3 SELECT / a confluent-kafka Consumer + bare fastavro) of
bench_projector.py, in the same run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.bench_projector import MIXES, fill, raw_kafka_rate, raw_sqlite_rate, signer_in
from bench.common import kafka_and_redis, report
from keel.audit import foldcore
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.port import EventLog
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer, Trust
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore

STAGES = ("read", "decode", "trees", "signatures", "evolve", "evolve_core", "write")


class Clock:
    """CPU seconds per stage (this process's: steadier than wall time on a machine shared with
    other work), added up by wrapping the callables that do each stage's work."""

    def __init__(self) -> None:
        self.s = dict.fromkeys((*STAGES, "fold"), 0.0)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.s[stage] += time.process_time() - t0

        return timed

    def reading(self, records: Iterator[Any]) -> Iterator[Any]:
        it = iter(records)
        while True:
            t0 = time.process_time()
            try:
                rec = next(it)
            except StopIteration:
                return
            finally:
                self.s["read"] += time.process_time() - t0
            yield rec


class _TimedLog:
    """The log, its reads timed (everything else passed through)."""

    def __init__(self, log: EventLog, clock: Clock) -> None:
        self._log, self._clock = log, clock

    def read(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._clock.reading(self._log.read(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def fold_stages(
    log: EventLog, views: ViewStore, codec: Codec, trust: Trust, fold: str
) -> dict[str, Any]:
    clock = Clock()
    views.apply = clock.wrap("write", views.apply)  # type: ignore[method-assign]
    p = Projector(log, views, codec, trust=trust, fold=fold)
    core = p.core
    core.decode_fold = clock.wrap("decode", core.decode_fold)  # type: ignore[method-assign]
    core.evolve = clock.wrap("evolve_core", core.evolve)  # type: ignore[method-assign]
    core.extend = clock.wrap("trees", core.extend)  # type: ignore[method-assign]
    core.screen = clock.wrap("signatures", core.screen)  # type: ignore[method-assign]
    p._fold = clock.wrap("fold", p._fold)  # type: ignore[method-assign]
    t0, c0 = time.perf_counter(), time.process_time()
    progress = p.run(checkpoint=False)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = clock.s
    s["evolve"] = s["fold"] - s["decode"] - s["trees"] - s["signatures"]
    s["read"] = cpu - s["fold"] - s["write"]
    assert progress.rejected == 0 and progress.undecodable == 0, progress
    native = getattr(getattr(core, "_fold", None), "folded", 0)
    row: dict[str, Any] = {
        "fold": progress.fold,
        "ev_per_s": progress.applied / total,  # wall time
        "ev_per_cpu_s": progress.applied / cpu,
        "wall_s": total,
        "cpu_s": cpu,
        "native_share": native / max(progress.applied, 1),
    }
    row.update({f"{k}_cpu_s": s[k] for k in STAGES})
    return row


def backend_rows(
    backend: str,
    log: EventLog,
    fresh_views: Callable[..., ViewStore],
    codec: Codec,
    signer: Signer,
    raw: float,
    n: int,
    rounds: int,
    folds: tuple[str, ...] = ("python", "native"),
    page_sizes: tuple[int | None, ...] = (None,),
) -> list[dict[str, Any]]:
    """Each fold of `folds` into fresh views, alternating, `rounds` times; with more than one
    of `page_sizes` (SQLite views: a new file's page size; None the product's, 0 SQLite's
    default) each fold runs
    at each size in turn (decision 0041's page-size comparison)."""
    rows = []
    for fold in folds * rounds:
        for size in page_sizes:
            views = fresh_views(fold) if size is None else fresh_views(fold, size)
            # a cold Trust per fold, as a fresh projector has: one Ed25519 verification per chunk
            trust = Trust(signer.trust.keys.values(), signer.trust.roles)
            row = fold_stages(log, views, codec, trust, fold)
            rows.append(
                {
                    "backend": backend,
                    "events": n,
                    "page_size": size,
                    **row,
                    "raw_ev_per_s": raw,
                    "ratio": row["ev_per_s"] / raw,
                }
            )
            views.clear()
            if isinstance(views, SqliteViewStore) and len(page_sizes) > 1:
                # a new file for the next fold: a cleared one keeps its page size and free pages
                views.close()
                for f in views.path.parent.glob(views.path.name + "*"):
                    f.unlink()
    return rows


Backend = tuple[str, EventLog, Callable[..., ViewStore], Signer, float]


def backends(
    codec: Codec, n: int, mix: str, tag: str, args: argparse.Namespace
) -> Iterator[Backend]:
    """Each backend the arguments ask for (SQLite -> SQLite unless --no-sqlite; Kafka -> Redis
    with --kafka): its name, a log filled with n signed events of `mix`, fresh views by name
    (`tag` keeps one bench's Redis namespaces apart from another's), the signer and the raw
    client loop's rate over that log. The servers and files last until the next is asked for."""
    if not getattr(args, "no_sqlite", False):
        with tempfile.TemporaryDirectory(prefix=f"keel-bench-{tag}-") as d:
            signer = signer_in(Path(d))
            log = SqliteEventLog(Path(d) / "log.db")
            fill(log, codec, n, signer, mix)
            raw = raw_sqlite_rate(Path(d) / "log.db", codec)
            yield (
                "sqlite -> sqlite",
                log,
                lambda k, page_size=None: SqliteViewStore(
                    Path(d) / f"views-{k}-{page_size}.db", page_size=page_size
                ),
                signer,
                raw,
            )
    if args.kafka:
        from keel.log.kafka import KafkaEventLog, new_prefix
        from keel.views.redis import RedisViewStore

        with kafka_and_redis() as (bootstrap, url), tempfile.TemporaryDirectory() as kd:
            signer = signer_in(Path(kd))
            klog = KafkaEventLog(bootstrap, prefix=new_prefix())
            fill(klog, codec, n, signer, mix)
            raw = raw_kafka_rate(bootstrap, klog.prefix, codec, n)
            try:
                yield (
                    "kafka -> redis",
                    klog,
                    lambda k: RedisViewStore(url, namespace=f"{tag}-{k}{time.time_ns()}:"),
                    signer,
                    raw,
                )
            finally:
                klog.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kafka", action="store_true", help="also Kafka -> Redis")
    ap.add_argument("--no-sqlite", action="store_true", help="skip SQLite -> SQLite")
    ap.add_argument("--rounds", type=int, default=1, help="folds of each core, alternating")
    ap.add_argument(
        "--mix",
        choices=MIXES,
        default="deployments",
        help="the log's events: deployments (the earlier figures' mix) or a retraining "
        "pipeline's history (bench.pipeline_mix)",
    )
    ap.add_argument("--folds", default="python,native", help="the cores to fold with, in turn")
    ap.add_argument(
        "--page-size",
        default="",
        help="SQLite views: a new file's page size, or several (e.g. 0,8192) each fold runs "
        "at in turn; 0 is SQLite's default (4096), none given the product's (NEW_PAGE_SIZE)",
    )
    args = ap.parse_args(argv)
    assert foldcore.native_available(), "keel_fold is not built: make install (needs cargo)"
    codec, n = Codec(load_registry()), args.events
    rows: list[dict[str, Any]] = []
    for backend, log, views_for, signer, raw in backends(codec, n, args.mix, "native", args):
        rows += backend_rows(
            backend,
            log,
            views_for,
            codec,
            signer,
            raw,
            n,
            args.rounds,
            tuple(args.folds.split(",")),
            tuple(int(s) for s in args.page_size.split(",")) if args.page_size else (None,),
        )
    report(
        "native_fold" if args.mix == "deployments" else f"native_fold_{args.mix}",
        f"fold cores stage by stage, {n:,} events, mix {args.mix} (signatures and trees on)",
        rows,
        {"stages": STAGES, "mix": args.mix, "load_average": os.getloadavg()},
    )


if __name__ == "__main__":
    main()
