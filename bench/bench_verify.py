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
"""

from __future__ import annotations

import argparse
import os
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
from keel.audit import foldcore
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
) -> list[dict[str, Any]]:
    notes = checkpoint_notes(log, codec, signer)
    rows = []
    for fold in ("python", "native") * rounds:
        row = verify_stages(log, codec, signer, notes, fold, n)
        rows.append({"backend": backend, **row, **baselines, "trees": len(notes)})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kafka", action="store_true", help="also a Kafka log")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SQLite log")
    ap.add_argument("--rounds", type=int, default=1, help="scans by each core, alternating")
    args = ap.parse_args(argv)
    assert foldcore.native_available(), "keel_fold is not built: make install (needs cargo)"
    codec, n = Codec(load_registry()), args.events
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
            rows += backend_rows("sqlite", log, codec, signer, n, args.rounds, base)
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
            rows += backend_rows("kafka", klog, codec, signer, n, args.rounds, base)
            klog.close()
    report(
        "verify",
        f"keel audit verify's log part, {n:,} events, both fold cores",
        rows,
        {"stages": STAGES, "load_average": os.getloadavg()},
    )


if __name__ == "__main__":
    main()
