"""Consumer groups: aiokafka (on Keel's private loop thread) vs confluent-kafka, same broker,
same records, same run (decision 0026).

What a group member does here (the projector service, `keel service run`): join, poll
batches, decode every record, commit what it returned, then wait for new records. Rows:
  - raw: a confluent-kafka consumer loop, no decode, no LogRecord: the baseline;
  - decode alone: Keel's codec over the same values, no Kafka: the other ceiling;
  - aiokafka: bench/aiokafka_group.py, the member Keel had until decision 0026 (poll and commit
    per batch; with and without decoding every record);
  - librdkafka: keel.log.kafka.member.KafkaSubscription (Keel's member since), same contract.
Measured: time to the first record after subscribing (the group join), the rate after it,
the process's CPU seconds (every thread) per 100k records, the delay from an append's return
to the member's poll returning it once caught up (median and p90 of 30), and the CPU an idle
member costs over 5 s.

    python -m bench.bench_kafka_clients [--events N] [--repeat R] [--busy K]

--busy K runs K CPU-bound processes beside the measurement (the 2-core machine shared with
other services, as a single-host stack runs); the results file is then kafka_clients_busyK.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.aiokafka_group import AiokafkaSubscription
from bench.bench_kafka import deployed_events
from bench.common import kafka_and_redis, median, report
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import Subscription
from keel.schemas.registry import load_registry

TOPICS = ["deployments"]


def raw_member(bootstrap: str, prefix: str, group: str) -> Any:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": prefix + group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "log_level": 2,
        }
    )
    c.subscribe([prefix + t for t in TOPICS])
    return c


def drain(poll: Callable[[], int], n: int) -> tuple[float, float, float]:
    """(seconds to the first record, seconds from it to the n-th, CPU seconds in all)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    got, first = 0, 0.0
    while got < n:
        k = poll()
        if k and not got:
            first = time.perf_counter()
        got += k
    end = time.perf_counter()
    return first - t0, end - first, time.process_time() - cpu0


def member(kind: str, log: KafkaEventLog, group: str) -> Subscription:
    if kind == "aiokafka":
        return AiokafkaSubscription(log._groups, group, TOPICS)
    return log.subscribe(group, TOPICS)


def consume(
    kind: str, log: KafkaEventLog, codec: Codec, n: int, decoding: bool
) -> tuple[float, float, float]:
    if kind == "raw":
        c = raw_member(log.bootstrap, log.prefix, new_prefix())

        def poll_raw() -> int:
            return sum(1 for m in c.consume(1000, timeout=0.5) if m.error() is None)

        try:
            return drain(poll_raw, n)
        finally:
            c.close()
    sub = member(kind, log, new_prefix())
    decode = codec.decode

    def poll() -> int:
        records = sub.poll(timeout=0.5, max_records=1000)
        if decoding:
            for r in records:
                decode(r.value)
        sub.commit()
        return len(records)

    try:
        return drain(poll, n)
    finally:
        sub.close()


def latency(kind: str, log: KafkaEventLog, codec: Codec, samples: int) -> list[float]:
    """Seconds from an append's return to the caught-up member's poll returning it."""
    sub = member(kind, log, new_prefix())
    try:
        while sub.poll(timeout=1.0, max_records=10_000):  # catch up (and join)
            sub.commit()
        one = deployed_events(codec, samples)
        out = []
        for e in one:
            log.append([e])
            t0 = time.perf_counter()
            while not sub.poll(timeout=0.05, max_records=100):
                pass
            out.append(time.perf_counter() - t0)
            sub.commit()
        return out
    finally:
        sub.close()


def idle_cpu(kind: str, log: KafkaEventLog, seconds: float = 5.0) -> float:
    """CPU seconds of the process while a caught-up member polls with nothing arriving."""
    sub = member(kind, log, new_prefix())
    try:
        while sub.poll(timeout=1.0, max_records=10_000):
            sub.commit()
        cpu0, t0 = time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            sub.poll(timeout=0.5)
        return time.process_time() - cpu0
    finally:
        sub.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--busy", type=int, default=0, help="CPU-bound processes running beside")
    args = ap.parse_args(argv)
    n = args.events
    codec = Codec(load_registry())
    events = deployed_events(codec, n)
    clients = ("aiokafka", "librdkafka")
    kinds = ("raw", *clients, *(f"{c}+decode" for c in clients))
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    delays: dict[str, list[float]] = {k: [] for k in clients}
    idle: dict[str, list[float]] = {k: [] for k in clients}
    decode_alone = []
    busy: list[subprocess.Popen[bytes]] = []
    with kafka_and_redis() as (bootstrap, _):
        log = KafkaEventLog(bootstrap, prefix=new_prefix())
        for j in range(0, n, 10_000):
            log.append(events[j : j + 10_000])
        burn = "while True: pass"
        busy = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(args.busy)]
        values = [e.value for e in events]
        for _ in range(args.repeat):
            for kind in kinds:  # interleaved: a slow spell of the machine hits all of them
                client, _, decoding = kind.partition("+")
                runs[kind].append(consume(client, log, codec, n, bool(decoding)))
            cpu0 = time.process_time()
            for v in values:
                codec.decode(v)
            decode_alone.append(time.process_time() - cpu0)
        for kind in clients:
            delays[kind] += latency(kind, log, codec, 30)
            idle[kind].append(idle_cpu(kind, log))
        for b in busy:
            b.kill()
            b.wait()
        log.close()
    raw_rate = n / median([r[1] for r in runs["raw"]])
    rows = []
    for kind in kinds:
        join = median([r[0] for r in runs[kind]])
        rate = n / median([r[1] for r in runs[kind]])
        cpu = median([r[2] for r in runs[kind]]) / n * 100_000
        d = sorted(delays.get(kind, []))
        rows.append(
            {
                "client": {"raw": "raw confluent loop"}.get(kind, kind),
                "join_s": join,
                "ev_per_s": rate,
                "vs_raw": rate / raw_rate,
                "cpu_s_per_100k": cpu,
                "delay_ms_p50": statistics.median(d) * 1000 if d else 0.0,
                "delay_ms_p90": d[int(len(d) * 0.9)] * 1000 if d else 0.0,
                "idle_cpu_s_per_5s": median(idle[kind]) if kind in idle else 0.0,
            }
        )
    alone = median(decode_alone)
    rows.insert(
        1,
        {
            "client": "decode alone (no Kafka)",
            "join_s": 0.0,
            "ev_per_s": n / alone,
            "vs_raw": n / alone / raw_rate,
            "cpu_s_per_100k": alone / n * 100_000,
            "delay_ms_p50": 0.0,
            "delay_ms_p90": 0.0,
            "idle_cpu_s_per_5s": 0.0,
        },
    )
    report(
        f"kafka_clients_busy{args.busy}" if args.busy else "kafka_clients",
        f"Consumer groups, {n:,} events, poll (+ decode) + commit per batch, median of "
        f"{args.repeat}, {args.busy} busy processes beside",
        rows,
        {"events": n, "repeat": args.repeat, "busy_processes": args.busy},
    )


if __name__ == "__main__":
    main()
