"""The audit projector: fold N events into views, beside the raw consume + decode of the same
events in the same run; serving lookups over a long deployment history; replay as-of.

Two baselines for reading: Keel's own log reader + codec, and the raw client loop (sqlite3
SELECT / a confluent-kafka Consumer) + bare fastavro. `ratio` is fold / raw client loop.

Backends: embedded (SQLite log -> SQLite views) and, with --kafka, Kafka -> Redis.
Events are signed (chunk signatures, decision 0009); `fold` checks every signature and keeps
the Merkle trees, `fold_bare` does neither. Also: the log part of `keel audit verify` (read,
signatures, trees against the checkpoint) and one inclusion proof, at N events.
Targets (issue 10): Kafka+Redis >= 40k events/s and >= 0.4x raw, signatures and trees on.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import pipeline_mix
from bench.common import kafka_and_redis, report
from keel.audit import merkle
from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.audit.trees import leaf
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.log.port import EventLog, LogRecord
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer, Trust, create_key, load_private, load_trust
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import events

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def signer_in(d: Path) -> Signer:
    project = d / "keel.toml"
    project.write_text('[identities.t]\nemits = ["*"]\n')
    for identity in ("t", "audit"):
        create_key(identity, d / "keys.toml", d / "private")
    return load_signer(d)


def signed_sqlite_log(d: Path, codec: Codec, n: int, mix: str = "deployments") -> Signer:
    """`fill`'s n signed events in a SQLite log at d/log.db, signed by a new signer in d
    (`signer_in`), which is returned."""
    signer = signer_in(d)
    log = SqliteEventLog(d / "log.db")
    try:
        fill(log, codec, n, signer, mix)
    finally:
        log.close()
    return signer


def load_signer(d: Path) -> Signer:
    """The signer signer_in(d) made, loaded again (e.g. in another process)."""
    return Signer(load_trust(d / "keys.toml", d / "keel.toml"), load_private(d / "private"))


MIXES = ("deployments", "pipeline")


def fill(log: EventLog, codec: Codec, n: int, signer: Signer, mix: str = "deployments") -> float:
    """Appends n signed events; returns the seconds spent signing. mix "deployments": a model's
    ArtifactRecorded and its ModelDeployed, n/2 times (the mix of every earlier figure);
    "pipeline": a retraining pipeline's history in its proportions (bench.pipeline_mix)."""
    signing = 0.0
    if mix == "pipeline":
        chunks: Iterable[list[Any]] = pipeline_mix.batches(n)
    else:
        assert mix == "deployments", mix
        chunks = (
            [e for i in range(start, min(n // 2, start + 5000)) for e in events(i)]
            for start in range(0, n // 2, 5000)
        )
    for batch in chunks:
        t0 = time.perf_counter()
        out = sign_all(signer, codec, batch)
        signing += time.perf_counter() - t0
        log.append(out)
    return signing


def verify_log_seconds(
    log: EventLog, codec: Codec, signer: Signer
) -> tuple[float, float, float, int]:
    """(seconds for the log part of verify, for one inclusion proof from the leaves, for
    `keel audit prove`'s work: find the event in the log, its tree's leaves, the proof;
    problems)."""
    from keel.audit import verify as vf
    from keel.events import decode_event
    from keel.topics import AUDIT_TOPIC, EVENT_TOPICS

    t0 = time.perf_counter()
    problems: list[vf.Problem] = []
    # a fresh Trust: a cold cache, as a verifier in another process has
    trust = type(signer.trust)(signer.trust.keys.values(), signer.trust.roles)
    # every leaf kept: the proofs below need them
    scan = vf.scan_log(log.read(list(EVENT_TOPICS)), codec, trust, problems, keep_leaves=True)
    notes = [
        ("log", t.note) for r in log.read([AUDIT_TOPIC]) for t in decode_event(codec, r.value).trees
    ]
    vf.check_checkpoints(notes, scan, trust, problems)
    verify_s = time.perf_counter() - t0
    tp = max(scan.leaves, key=lambda k: len(scan.leaves[k]))
    leaves = scan.leaves[tp]
    t0 = time.perf_counter()
    proof = merkle.inclusion_proof(len(leaves) // 3, leaves)
    assert merkle.verify_inclusion(
        len(leaves) // 3, len(leaves), leaves[len(leaves) // 3], proof, merkle.root(leaves)
    )
    prove_s = time.perf_counter() - t0
    ids = list(scan.positions)
    t0 = time.perf_counter()
    found = vf.locate(log.read(list(EVENT_TOPICS)), ids[len(ids) // 3], codec)
    assert found is not None
    _, index, _, tree = found
    assert merkle.inclusion_proof(index, tree)
    command_s = time.perf_counter() - t0
    return verify_s, prove_s, command_s, len(problems)


def raw_rate(log: EventLog, codec: Codec) -> float:
    t0 = time.perf_counter()
    count = sum(1 for r in log.read() if codec.decode(r.value))
    return count / (time.perf_counter() - t0)


def _bare_decoder(codec: Codec) -> Any:
    from io import BytesIO

    from fastavro import schemaless_reader

    schemas: dict[bytes, Any] = {}

    def decode(value: bytes) -> Any:
        fp = value[2:10]
        schema = schemas.get(fp)
        if schema is None:
            found = codec.registry.by_fingerprint(fp)
            assert found is not None
            schema = schemas[fp] = found.parsed
        buf = BytesIO(value)
        buf.seek(10)
        return schemaless_reader(buf, schema, None)

    return decode


def raw_sqlite_rate(path: Path, codec: Codec) -> float:
    """sqlite3 SELECT of every event + bare fastavro: the floor under any embedded reader."""
    import sqlite3

    decode = _bare_decoder(codec)
    t0 = time.perf_counter()
    db = sqlite3.connect(str(path))
    count = sum(1 for (v,) in db.execute("SELECT value FROM events") if decode(v))
    db.close()
    return count / (time.perf_counter() - t0)


def raw_kafka_rate(
    bootstrap: str, prefix: str, codec: Codec, n: int, trust: Trust | None = None
) -> float:
    """A confluent-kafka Consumer (read_committed) over every event topic + bare fastavro.

    With `trust`: the floor under any fold that checks signatures and keeps trees, i.e. the
    same loop plus only that work per record (signature check, leaf hash, frontier append)
    and nothing for the views."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from keel.log.kafka import SIG_HEADER, TIME_HEADER, new_prefix
    from keel.topics import EVENT_TOPICS

    bare = _bare_decoder(codec)
    trees: dict[tuple[str, int], merkle.Frontier] = {}

    def handle(m: Any) -> Any:
        """One message: decoded, and with `trust` its signature checked and its leaf added."""
        value = m.value()
        record = bare(value)
        if trust is not None:
            topic, partition = m.topic(), m.partition()
            tree = trees.get((topic, partition))
            if tree is None:
                tree = trees[(topic, partition)] = merkle.Frontier()
            headers = dict(m.headers())
            _, stamped = m.timestamp()
            key = m.key()
            rec = LogRecord(
                topic,
                partition,
                m.offset(),
                key.decode() if key else "",
                int(headers.get(TIME_HEADER, stamped)),
                value,
                headers.get(SIG_HEADER),
                stamped,
            )
            tree.append(leaf(rec))  # leaf format 2 (decision 0021)
            verdict = trust.check(value, headers.get(SIG_HEADER), record["envelope"]["event_type"])
            assert verdict.problem is None, verdict
        return record

    t0 = time.perf_counter()
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": new_prefix(),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "log_level": 2,
        }
    )
    # assigned, not subscribed: no group join (~3 s) in the baseline's time
    meta = c.list_topics(timeout=10).topics
    c.assign(
        [
            TopicPartition(prefix + t, p, OFFSET_BEGINNING)
            for t in EVENT_TOPICS
            for p in meta[prefix + t].partitions
        ]
    )
    got = 0
    deadline = time.monotonic() + 600
    while got < n and time.monotonic() < deadline:
        for m in c.consume(5000, timeout=1.0):
            if m.error() is None and handle(m):
                got += 1
    c.close()
    return got / (time.perf_counter() - t0)


def fold_rate(log: EventLog, views: ViewStore, codec: Codec, signer: Signer | None) -> float:
    """signer: signatures checked, trees kept, a checkpoint at the end; None: neither."""
    t0 = time.perf_counter()
    p = Projector(log, views, codec, trees=signer is not None, signer=signer).run()
    return p.applied / (time.perf_counter() - t0)


def replay_seconds(log: EventLog, codec: Codec, d: str, n: int) -> float:
    """`keel replay --as-of` as the CLI runs it: every event read, those up to T (here the
    middle of the log) folded into a fresh SQLite snapshot, no chain."""
    t0 = time.perf_counter()
    snap = SqliteViewStore(Path(d) / f"asof-{time.time_ns()}.db")
    as_of = int((T0 + timedelta(minutes=n // 4)).timestamp() * 1000)
    Projector(log, snap, codec, as_of_ms=as_of, trees=False).run()
    snap.close()
    return time.perf_counter() - t0


def lookups(views: ViewStore, n_deploys: int, samples: int = 2000) -> tuple[float, float]:
    import random

    rnd = random.Random(1)
    times = []
    for _ in range(samples):
        at = T0 + timedelta(minutes=rnd.uniform(0, n_deploys))
        t0 = time.perf_counter()
        vq.serving_at(views, "f", "prod", at)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99)] * 1000


def backend_row(
    backend: str,
    log: EventLog,
    views: ViewStore,
    bare_views: ViewStore,
    raw: float,
    codec: Codec,
    n: int,
    signer: Signer,
    signing_s: float,
    floor: float | None = None,
) -> dict[str, Any]:
    """Keel's read + decode, the fold with and without signatures and trees, lookups, a
    replay, verify and a proof on the filled `log`; `raw` is the backend's raw client loop."""
    keel_read = raw_rate(log, codec)
    fold = fold_rate(log, views, codec, signer)
    p50, p99 = lookups(views, n // 2)
    bare = fold_rate(log, bare_views, codec, None)
    with tempfile.TemporaryDirectory(prefix="keel-bench-proj-") as d:
        replay = replay_seconds(log, codec, d, n)
    verify_s, prove_s, prove_command_s, problems = verify_log_seconds(log, codec, signer)
    assert problems == 0
    return {
        "backend": backend,
        "fold_ev_per_s": fold,
        "fold_bare_ev_per_s": bare,
        "sign_ev_per_s": n / signing_s,
        "verify_log_s": verify_s,
        "one_proof_s": prove_s,
        "prove_command_s": prove_command_s,  # `keel audit prove`: read the log, then prove
        "keel_read_decode_ev_per_s": keel_read,
        "raw_client_decode_ev_per_s": raw,
        # the raw loop plus only the trust work (signature check, leaf, frontier): no fold
        # that keeps the trees and checks signatures in Python can beat it on this machine
        "raw_plus_trust_ev_per_s": floor,
        "ratio": fold / raw,
        "lookup_p50_ms": p50,
        "lookup_p99_ms": p99,
        "replay_as_of_s": replay,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--kafka", action="store_true", help="also Kafka -> Redis")
    args = ap.parse_args(argv)
    codec = Codec(load_registry())
    n = args.events
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keel-bench-proj-") as d:
        signer = signer_in(Path(d))
        log = SqliteEventLog(Path(d) / "log.db")
        signing = fill(log, codec, n, signer)
        raw = raw_sqlite_rate(Path(d) / "log.db", codec)
        views = SqliteViewStore(Path(d) / "views.db")
        bare = SqliteViewStore(Path(d) / "bare.db")
        rows.append(
            backend_row("sqlite -> sqlite", log, views, bare, raw, codec, n, signer, signing)
        )
    if args.kafka:
        from keel.log.kafka import KafkaEventLog, new_prefix
        from keel.views.redis import RedisViewStore

        with kafka_and_redis() as (bootstrap, url), tempfile.TemporaryDirectory() as kd:
            signer = signer_in(Path(kd))
            klog = KafkaEventLog(bootstrap, prefix=new_prefix())
            signing = fill(klog, codec, n, signer)
            raw = raw_kafka_rate(bootstrap, klog.prefix, codec, n)
            # a cold Trust, as the fold has: one Ed25519 verification per chunk again
            floor = raw_kafka_rate(
                bootstrap,
                klog.prefix,
                codec,
                n,
                load_trust(Path(kd) / "keys.toml", Path(kd) / "keel.toml"),
            )
            rviews = RedisViewStore(url, namespace=f"bench{time.time_ns()}:")
            rbare = RedisViewStore(url, namespace=f"bare{time.time_ns()}:")
            rows.append(
                backend_row(
                    "kafka -> redis", klog, rviews, rbare, raw, codec, n, signer, signing, floor
                )
            )
            rviews.clear()
            rbare.clear()
            klog.close()
    report(
        "projector",
        f"audit projector, {n:,} events ({n // 2:,} deployments)",
        rows,
        {"targets": "kafka+redis >= 40k ev/s and >= 0.4x raw with signatures and trees"},
    )


if __name__ == "__main__":
    main()
