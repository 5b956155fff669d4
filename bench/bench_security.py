"""What security costs: the same produce and consume loops against two brokers started side
by side in one run, one open (PLAINTEXT, no authorizer) and one secured as the launcher and
`make test` run it (TLS listener, SASL/SCRAM-SHA-512, StandardAuthorizer with Keel's ACLs).

Rows: a raw confluent-kafka produce loop (idempotent, acks=all, lz4) and Keel's
KafkaEventLog.append (1k-event transactions, as a service principal: the ACL check is on
every request), then a raw consume loop and Keel's read. Also Redis: pipelined SET/GET of view
documents, TLS + ACL user against plain. Secured / open ratios of medians; no thresholds.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_kafka import deployed_events
from bench.common import median, report, timed
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import OutgoingEvent
from keel.schemas.registry import load_registry


def kafka_loops(
    conf: dict[str, Any], events: list[OutgoingEvent], repeat: int
) -> dict[str, list[float]]:
    from confluent_kafka import Consumer, Producer

    bootstrap = str(conf["bootstrap.servers"])
    n = len(events)
    out: dict[str, list[float]] = {k: [] for k in ("raw_p", "keel_p", "raw_c", "keel_c")}
    for _ in range(repeat):
        raw_prefix, keel_prefix = new_prefix(), new_prefix()
        KafkaEventLog(bootstrap, prefix=raw_prefix).close()  # topics (+ ACLs) as the operator
        log = KafkaEventLog(bootstrap, prefix=keel_prefix, principal="deploy")
        topic = raw_prefix + "deployments"
        p = Producer(
            {
                **conf,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "log_level": 2,
            }
        )

        def raw_produce(p: Any = p, topic: str = topic) -> None:
            for e in events:
                while True:
                    try:
                        p.produce(topic, e.value, e.key.encode(), timestamp=e.timestamp_ms)
                        break
                    except BufferError:
                        p.poll(0.1)
                p.poll(0)
            assert p.flush(60) == 0

        def keel_produce(lg: KafkaEventLog = log) -> None:
            for j in range(0, n, 1000):
                lg.append(events[j : j + 1000])

        def raw_consume(topic: str = topic) -> None:
            c = Consumer(
                {
                    **conf,
                    "group.id": topic + ".bench",
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                    "log_level": 2,
                }
            )
            c.subscribe([topic])
            got = 0
            while got < n:
                got += sum(1 for m in c.consume(1000, timeout=1.0) if not m.error())
            c.close()

        def keel_consume(lg: KafkaEventLog = log) -> None:
            assert sum(1 for _ in lg.read(["deployments"])) == n

        out["raw_p"] += timed(raw_produce, 1)
        out["keel_p"] += timed(keel_produce, 1)
        out["raw_c"] += timed(raw_consume, 1)
        out["keel_c"] += timed(keel_consume, 1)
        log.close()
    return out


def redis_loop(client: Any, n: int, repeat: int) -> list[float]:
    doc = b'{"model_id": "' + b"m" * 64 + b'", "env": "prod", "kind": "promotion"}'

    def once() -> None:
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"keel:bench:doc:{i}", doc)
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        for j in range(0, n, 1000):
            client.mget([f"keel:bench:doc:{i}" for i in range(j, min(n, j + 1000))])

    return timed(once, repeat)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    from deploy.kafka_broker import Kafka
    from deploy.processes import free_port
    from deploy.redis_server import Redis

    n = args.events
    registry = load_registry()
    codec = Codec(registry)
    events = deployed_events(codec, n, writer="deploy")
    results: dict[str, dict[str, list[float]]] = {}
    redis_t: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="keel-bench-sec-") as d:
        for label, secure in (("open", False), ("secured", True)):
            broker = Kafka(Path(d) / label, free_port(), free_port(), secure=secure).start()
            server = Redis(Path(d) / f"{label}-redis", free_port(), secure=secure).start()
            try:
                results[label] = kafka_loops(broker.client_config(), events, args.repeat)
                redis_t[label] = redis_loop(server.client(), n, args.repeat)
            finally:
                broker.stop()
                server.stop()
    rows = []
    what: list[tuple[str, str, Callable[[str], list[float]]]] = [
        ("kafka produce, raw confluent-kafka loop", "raw_p", lambda s: results[s]["raw_p"]),
        ("kafka produce, KafkaEventLog.append (1k txns)", "keel_p", lambda s: results[s]["keel_p"]),
        ("kafka consume, raw confluent-kafka loop", "raw_c", lambda s: results[s]["raw_c"]),
        ("kafka consume, KafkaEventLog.read", "keel_c", lambda s: results[s]["keel_c"]),
        ("redis SET+MGET, pipelined", "redis", lambda s: redis_t[s]),
    ]
    for label, _, get in what:
        op, sec = median(get("open")), median(get("secured"))
        rows.append(
            {
                "op": label,
                "open_per_s": n / op,
                "secured_per_s": n / sec,
                "secured_over_open": op / sec,
            }
        )
    report(
        "security",
        f"TLS + SASL/SCRAM + ACLs vs open, {n:,} records, median of {args.repeat}",
        rows,
        {"events": n, "repeat": args.repeat},
    )


if __name__ == "__main__":
    main()
