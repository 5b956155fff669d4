"""`keel audit verify`'s log part on both fold cores (issue 37), stage by stage, beside raw loops.

The log part: every record read, decoded, its signature checked, its leaf hashed into its tree,
and the trees' roots compared with a signed checkpoint of every tree at the log's end
(verify.scan_log + check_checkpoints, as verify_run runs them). N signed events in a SQLite log
(with --kafka, also a Kafka log), scanned by the Python core and the native one (keel_fold),
alternating, each with a cold Trust: once as verify runs it (wall_s, cpu_s), once with every
stage timed (the timers cost ~1-2 us an event: timed_cpu_s). Stages, in CPU seconds of this
process:

    read       iterating the log (the backend's reader: rows or messages into LogRecords)
    decode     Avro bytes -> events (the core's decode)
    trees      leaf hashes, frontiers and roots at the checkpoint's sizes (the core's extend)
    signatures chunk signature checks (the core's check_many)
    rest       the scan's own per-record work (positions, verdicts, counts) and the checks

Baselines in the same run: `sha256sum` of the log file (SQLite: reading the bytes at all), the
backend's reader alone (Keel's LogRecords, nothing done with them) and the raw client loop +
bare fastavro of bench_projector.py.

--whole: all of `keel audit verify --checkpoint <witness> --skip artifacts` on a home (the
embedded one: SQLite log and views; with --kafka also Kafka + Redis, as in the disaster drill),
N events folded and checkpointed by `keel audit project`, the checkpoint handed to a witness
outside the home: the CLI run timed whole (a process, as a user runs it), then the same verify
in this process with every stage timed (verify_run.Stages, wall and CPU): the views brought to
the log's end (the CLI's first step), the notes, the log scan, the trail's checks, the views'
fresh fold, both snapshots and their comparison; beside the raw loop of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_native_fold import Clock, _TimedLog
from bench.bench_projector import fill, raw_kafka_rate, raw_sqlite_rate, signer_in
from bench.common import kafka_and_redis, report
from keel.audit import checkpoint as cp
from keel.audit import foldcore, gcpause
from keel.audit import verify as vf
from keel.codec import Codec
from keel.log.port import EventLog
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer, Trust
from keel.topics import EVENT_TOPICS

STAGES = ("read", "decode", "trees", "signatures")


def checkpoint_notes(log: EventLog, codec: Codec, signer: Signer) -> list[tuple[str, str]]:
    """A signed note of every tree at the log's end, as the projector's checkpoint states it."""
    scan = vf.scan_log(log.read(list(EVENT_TOPICS)), codec, signer.trust, [], fold="auto")
    at = datetime.now(UTC)
    return [
        ("bench", cp.sign(cp.body(tp[0], tp[1], tree.size, tree.root(), at, 0), signer))
        for tp, tree in scan.frontiers.items()
    ]


def verify_log(
    log: EventLog,
    codec: Codec,
    signer: Signer,
    notes: list[tuple[str, str]],
    fold: str,
    clock: Clock | None = None,
) -> tuple[float, float]:
    """(wall, CPU) seconds of the log part; with `clock`, each stage's CPU seconds added to it."""
    select = foldcore.select

    def timed_select(*args: Any, **kwargs: Any) -> Any:
        core = select(*args, **kwargs)
        assert clock is not None
        core.decode = clock.wrap("decode", core.decode)  # type: ignore[method-assign]
        core.extend = clock.wrap("trees", core.extend)  # type: ignore[method-assign]
        core.check_many = clock.wrap("signatures", core.check_many)  # type: ignore[method-assign]
        if core.name == "native":  # the Python core's screen calls its check_many, timed
            core.screen = clock.wrap("signatures", core.screen)  # type: ignore[method-assign]
        return core

    # a cold Trust, as a verifier in another process has
    trust = Trust(signer.trust.keys.values(), signer.trust.roles)
    problems: list[vf.Problem] = []
    if clock is not None:
        foldcore.select = timed_select  # type: ignore[assignment]
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        reader = log if clock is None else _TimedLog(log, clock)
        scan = vf.scan_log(
            reader.read(list(EVENT_TOPICS)),
            codec,
            trust,
            problems,
            leaf2_from=vf.leaf_rule(notes, trust),
            watch=vf.watch_sizes(notes, trust),
            fold=fold,
        )
        trees = vf.check_checkpoints(notes, scan, trust, problems)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        foldcore.select = select  # type: ignore[assignment]
    assert not problems and not trees["uncovered"], (problems[:3], trees)
    assert scan.signed == scan.records and scan.fold == fold, (scan.signed, scan.records)
    return wall, cpu


def verify_stages(
    log: EventLog, codec: Codec, signer: Signer, notes: list[tuple[str, str]], fold: str, n: int
) -> dict[str, Any]:
    wall, cpu = verify_log(log, codec, signer, notes, fold)
    clock = Clock()
    _, timed_cpu = verify_log(log, codec, signer, notes, fold, clock)
    s = clock.s
    row: dict[str, Any] = {"fold": fold, "events": n, "wall_s": wall, "cpu_s": cpu}
    row["us_per_event_cpu"] = cpu / n * 1e6
    row["timed_cpu_s"] = timed_cpu
    row.update({f"{k}_cpu_s": s[k] for k in STAGES})
    row["rest_cpu_s"] = timed_cpu - sum(s[k] for k in STAGES)
    return row


def read_seconds(log: EventLog) -> float:
    """Keel's reader alone: every record as a LogRecord, nothing done with it."""
    t0 = time.perf_counter()
    for _ in log.read(list(EVENT_TOPICS)):
        pass
    return time.perf_counter() - t0


def sha256sum_seconds(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - t0


def backend_rows(
    backend: str,
    log: EventLog,
    codec: Codec,
    signer: Signer,
    n: int,
    rounds: int,
    baselines: dict[str, float],
    folds: tuple[str, ...] = ("python", "native"),
) -> list[dict[str, Any]]:
    notes = checkpoint_notes(log, codec, signer)
    rows = []
    for fold in folds * rounds:
        row = verify_stages(log, codec, signer, notes, fold, n)
        rows.append({"backend": backend, **row, **baselines, "trees": len(notes)})
    return rows


WHOLE_TOKEN = "verify-bench-t0k"


def whole_env(d: Path, bus: str | None, views: str | None) -> dict[str, str]:
    """The environment of a home in `d` (the embedded log and views where bus/views are None)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_") or k == "KEEL_FOLD"}
    env.update(
        KEEL_HOME=str(d / "home"),
        KEEL_PROJECT=str(d / "keel.toml"),
        KEEL_KEYS_DIR=str(d / "private"),
        KEEL_ADMIN_DIR=str(d / "admin"),
        KEEL_API_TOKEN=WHOLE_TOKEN,
    )
    if bus:
        env["KEEL_BUS"] = bus
    if views:
        env["KEEL_VIEWS"] = views
    return env


def keel_cli(env: dict[str, str], *args: str) -> tuple[float, str]:
    """(wall seconds, stdout) of one `keel` command, which must succeed."""
    import sys

    t0 = time.perf_counter()
    out = subprocess.run(
        [str(Path(sys.executable).with_name("keel")), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t0
    assert out.returncode == 0, f"keel {' '.join(args)}: {out.stderr[-2000:]}"
    return took, out.stdout


def _per_key_snapshot(views: Any) -> dict[str, Any]:
    """RedisViewStore.snapshot as it was before 05fdec0 (a round trip a key): the 'before'."""
    from keel.views.docjson import loads

    r, ns = views._r, views.ns
    docs, idx, sets, trk = {}, {}, {}, {}
    for raw in r.scan_iter(match=f"{ns}*", count=1000):
        kind, _, name = raw.decode()[len(ns) :].partition(":")
        if kind == "doc":
            docs[name] = loads(r.get(raw))
        elif kind == "idx":
            idx[name] = {m.decode(): float(s) for m, s in r.zrange(raw, 0, -1, withscores=True)}
        elif kind == "set":
            sets[name] = {m.decode() for m in r.smembers(raw)}
        elif kind == "tracking":
            trk[name] = {k.decode().replace("\x00", "/"): int(v) for k, v in r.hgetall(raw).items()}
    return {"docs": docs, "indexes": idx, "sets": sets, "tracking": trk}


def before_after(d: Path, backend: str) -> dict[str, dict[str, float]]:
    """The changed stages the old way and the new, alternating, on one home: verify's fresh
    fold into a file (before) and into memory (now); on Redis, the live snapshot a GET a key
    (before) and a page at a time (now). Seconds (wall, CPU) each."""
    from keel.audit.projectors import projector_for
    from keel.views.sqlite import SqliteViewStore
    from keel_services.entrypoints.container import build

    out: dict[str, dict[str, float]] = {}

    def timed(name: str, fn: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        got = fn()
        out[name] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        return got

    with build(create=False) as app:
        for name, where in (
            ("fresh fold, file (before)", d / "fresh.db"),
            ("fresh fold, memory", ":memory:"),
        ):
            store = SqliteViewStore(Path(where))
            timed(name, lambda s=store: projector_for(app.rt, s, checkpoints="none").run())
            store.close()
        # the views part's snapshots and comparison with the cycle collector running (before)
        # and paused (now), with a scan's worth of objects alive as in verify
        keep = [(i, str(i)) for i in range(400_000)]
        for name, pause in (
            ("snapshots + compare, collector on (before)", False),
            ("snapshots + compare, collector paused", True),
        ):
            with gcpause.paused() if pause else contextlib.nullcontext():
                views = app.rt.views
                timed(name, lambda v=views: vf.check_views(v.snapshot(), v.snapshot(), []))
        del keep
        if backend == "kafka":
            old = timed(
                "live snapshot, a GET a key (before)", lambda: _per_key_snapshot(app.rt.views)
            )
            new = timed("live snapshot, by page", app.rt.views.snapshot)
            assert old == new, "the two snapshots differ"
    return out


def whole_verify(
    backend: str, n: int, bus: str | None = None, views: str | None = None, pair: bool = False
) -> dict:
    """One home of n events: the CLI's verify timed whole, then stage by stage in-process (with
    `pair`, the changed stages before and after, before_after)."""
    import json

    from bench.bench_projector import load_signer
    from keel.audit.projectors import projector_for
    from keel.audit.verify_run import Stages, verify_scan
    from keel_services.entrypoints.container import build

    codec = Codec(load_registry())
    with tempfile.TemporaryDirectory(prefix="keel-bench-verify-whole-") as tmp:
        d = Path(tmp)
        signer_in(d)
        env = whole_env(d, bus, views)
        (d / "home").mkdir()
        keel_cli(env, "keys", "record", "--reason", "verify bench keys")
        signer = load_signer(d)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            with build() as app:
                fill(app.rt.log, codec, n, signer)
                log_path = getattr(app.rt.log, "path", None)
                prefix = getattr(app.rt.log, "prefix", None)
            project_s, _ = keel_cli(env, "audit", "project", "--json")
            witness = d / "witness"
            keel_cli(env, "audit", "checkpoint", "--to", f"{witness}/")
            args = ("audit", "verify", "--checkpoint", str(witness), "--skip", "artifacts")
            cli_s, text = keel_cli(env, *args, "--json")
            verdict = json.loads(text)
            assert verdict["ok"], verdict["problems"][:3]
            stages = Stages()
            t0, c0 = time.perf_counter(), time.process_time()
            with build(create=False) as app:
                with stages("views to the log's end"):
                    projector_for(app.rt).run()
                doc, _ = verify_scan(app.rt, [witness], ["artifacts"], stages=stages)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert doc["ok"], doc["problems"][:3]
            assert doc == verdict, "in-process verify differs from the CLI's"
            pairs = before_after(d, backend) if pair else {}
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if backend == "kafka":
            assert bus is not None and prefix is not None
            raw = n / raw_kafka_rate(bus.removeprefix("kafka://").split("?")[0], prefix, codec, n)
        else:
            assert log_path is not None
            raw = n / raw_sqlite_rate(Path(log_path), codec)
    return {
        "backend": backend,
        "events": n,
        "fold": doc["fold"],
        "project_s": project_s,
        "cli_verify_s": cli_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "stages": {k: {"wall_s": w, "cpu_s": c} for k, (w, c) in stages.seconds.items()},
        "raw_loop_s": raw,
        "before_after": pairs,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def whole_rows(result: dict) -> list[dict[str, Any]]:
    """One table row a stage, then the whole and the raw loop."""
    n, raw = result["events"], result["raw_loop_s"]
    rows = []
    for name, t in result["stages"].items():
        rows.append(
            {
                "backend": result["backend"],
                "stage": name,
                "wall_s": t["wall_s"],
                "cpu_s": t["cpu_s"],
                "us/event cpu": t["cpu_s"] / n * 1e6,
                "x raw loop": t["wall_s"] / raw,
            }
        )
    staged = sum(t["wall_s"] for t in result["stages"].values())
    extra = [(k, t["wall_s"], t["cpu_s"]) for k, t in result.get("before_after", {}).items()]
    for name, wall, cpu in (
        *extra,
        ("(in stages)", staged, sum(t["cpu_s"] for t in result["stages"].values())),
        ("whole, in-process", result["wall_s"], result["cpu_s"]),
        ("whole, the CLI", result["cli_verify_s"], float("nan")),
        ("raw loop", raw, float("nan")),
    ):
        rows.append(
            {
                "backend": result["backend"],
                "stage": name,
                "wall_s": wall,
                "cpu_s": cpu,
                "us/event cpu": cpu / n * 1e6,
                "x raw loop": wall / raw,
            }
        )
    return rows


def main_whole(args: argparse.Namespace) -> None:
    n = args.events
    results = []
    load = [os.getloadavg()]
    if not args.no_sqlite:
        results.append(whole_verify("embedded", n, pair=args.pair))
        load.append(os.getloadavg())
    if args.kafka:
        from keel.log.kafka import new_prefix

        with kafka_and_redis() as (bootstrap, redis_url):
            bus = f"kafka://{bootstrap}?prefix={new_prefix()}"
            views = f"{redis_url}?namespace=vb:"
            results.append(whole_verify("kafka", n, bus, views, pair=args.pair))
        load.append(os.getloadavg())
    rows = [r for res in results for r in whole_rows(res)]
    report(
        args.name or "verify_whole",
        f"keel audit verify, whole, stage by stage, {n:,} events",
        rows,
        {"results": results, "load_average": load},
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--whole", action="store_true", help="all of verify on a home, by stage")
    ap.add_argument("--name", default=None, help="results file name")
    ap.add_argument("--pair", action="store_true", help="--whole: changed stages before/after")
    ap.add_argument("--kafka", action="store_true", help="also a Kafka log")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite log")
    ap.add_argument("--rounds", type=int, default=1, help="scans by each core, alternating")
    ap.add_argument(
        "--fold", choices=("both", "python", "native"), default="both", help="the cores scanning"
    )
    args = ap.parse_args(argv)
    if args.whole:
        main_whole(args)
        return
    assert foldcore.native_available(), "keel_fold is not built: make install (needs cargo)"
    codec, n = Codec(load_registry()), args.events
    folds = ("python", "native") if args.fold == "both" else (args.fold,)
    rows: list[dict[str, Any]] = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="keel-bench-verify-") as d:
            signer = signer_in(Path(d))
            path = Path(d) / "log.db"
            log = SqliteEventLog(path)
            fill(log, codec, n, signer)
            base = {
                "sha256sum_s": sha256sum_seconds(path),
                "log_mib": path.stat().st_size / 2**20,
                "keel_read_s": read_seconds(log),
                "raw_decode_s": n / raw_sqlite_rate(path, codec),
            }
            rows += backend_rows("sqlite", log, codec, signer, n, args.rounds, base, folds)
            log.close()
    if args.kafka:
        from keel.log.kafka import KafkaEventLog, new_prefix

        with kafka_and_redis() as (bootstrap, _), tempfile.TemporaryDirectory() as kd:
            signer = signer_in(Path(kd))
            klog = KafkaEventLog(bootstrap, prefix=new_prefix())
            fill(klog, codec, n, signer)
            base = {
                "keel_read_s": read_seconds(klog),
                "raw_decode_s": n / raw_kafka_rate(bootstrap, klog.prefix, codec, n),
            }
            rows += backend_rows("kafka", klog, codec, signer, n, args.rounds, base, folds)
            klog.close()
    report(
        args.name or "verify",
        f"keel audit verify's log part, {n:,} events, both fold cores",
        rows,
        {"stages": STAGES, "load_average": os.getloadavg()},
    )


if __name__ == "__main__":
    main()
