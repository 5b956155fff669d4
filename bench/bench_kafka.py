"""Kafka adapter vs the raw clients, same broker, same bytes, same run.

Produce: KafkaEventLog.append (batches of 1000) vs a raw confluent-kafka produce loop.
Consume+decode: KafkaEventLog.read + Keel's codec vs a raw confluent-kafka consume loop with bare
fastavro decode, which is the limit for one Python process. Target: adapter >= 0.5x raw.
"""

from __future__ import annotations

import argparse
from io import BytesIO

from fastavro import schemaless_reader

from bench.bench_codec import records
from bench.common import kafka_and_redis, median, report, timed
from keel.codec import HEADER_LEN, Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import OutgoingEvent
from keel.schemas.registry import load_registry


def deployed_events(codec: Codec, n: int, writer: str = "") -> list[OutgoingEvent]:
    """n encoded ModelDeployed events over 100 subjects, as the deploy service appends them."""
    return [
        OutgoingEvent(
            "deployments",
            f"fam/prod/{i % 100}",
            1_700_000_000_000 + i,
            codec.encode("ModelDeployed", r),
            writer=writer,
        )
        for i, r in enumerate(records(n))
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.events
    registry = load_registry()
    codec = Codec(registry)
    schema = registry.latest("ModelDeployed").parsed
    events = deployed_events(codec, n)
    from confluent_kafka import Consumer, Producer

    def append_all(lg: KafkaEventLog, batch: int) -> None:
        for j in range(0, n, batch):
            lg.append(events[j : j + batch])

    t: dict[str, list[float]] = {
        k: []
        for k in (
            "raw_produce",
            "keel_produce",
            "keel_produce_10k",
            "keel_produce_idem",
            "raw_consume",
            "keel_consume",
        )
    }
    with kafka_and_redis() as (bootstrap, _):
        for _ in range(args.repeat):
            raw_prefix, keel_prefix = new_prefix(), new_prefix()
            raw_log = KafkaEventLog(bootstrap, prefix=raw_prefix)  # provisions the same topics
            log = KafkaEventLog(bootstrap, prefix=keel_prefix)
            p = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "log_level": 2,
                }
            )
            topic = raw_prefix + "deployments"

            def raw_produce(p: Producer = p, topic: str = topic) -> None:
                for e in events:
                    while True:
                        try:
                            p.produce(
                                topic, value=e.value, key=e.key.encode(), timestamp=e.timestamp_ms
                            )
                            break
                        except BufferError:
                            p.poll(0.1)
                    p.poll(0)
                assert p.flush(60) == 0

            t["raw_produce"] += timed(raw_produce, 1)
            t["keel_produce"] += timed(lambda lg=log: append_all(lg, 1000), 1)
            big = KafkaEventLog(bootstrap, prefix=new_prefix())
            t["keel_produce_10k"] += timed(lambda lg=big: append_all(lg, 10_000), 1)
            big.close()
            idem = KafkaEventLog(bootstrap, prefix=new_prefix(), exactly_once=False)
            t["keel_produce_idem"] += timed(lambda lg=idem: append_all(lg, 1000), 1)
            idem.close()

            def raw_consume(topic: str = topic) -> None:
                c = Consumer(
                    {
                        "bootstrap.servers": bootstrap,
                        "group.id": new_prefix(),
                        "auto.offset.reset": "earliest",
                        "enable.auto.commit": False,
                        "log_level": 2,
                    }
                )
                c.subscribe([topic])
                got = 0
                while got < n:
                    for m in c.consume(1000, timeout=1.0):
                        if m.error():
                            continue
                        buf = BytesIO(m.value())
                        buf.seek(HEADER_LEN)
                        schemaless_reader(buf, schema, None)
                        got += 1
                c.close()

            def keel_consume(lg: KafkaEventLog = log) -> None:
                dec = codec.decode
                got = sum(1 for r in lg.read(["deployments"]) if dec(r.value))
                assert got == n, got

            t["raw_consume"] += timed(raw_consume, 1)
            t["keel_consume"] += timed(keel_consume, 1)
            log.close()
            raw_log.close()
    m = {k: median(v) for k, v in t.items()}
    rows = [
        {
            "op": f"produce: {label}",
            "raw_ev_per_s": n / m["raw_produce"],
            "keel_ev_per_s": n / m[key],
            "ratio": m["raw_produce"] / m[key],
        }
        for label, key in (
            ("exactly-once, 1k-event transactions (default)", "keel_produce"),
            ("exactly-once, 10k-event transactions", "keel_produce_10k"),
            ("idempotent only, 1k batches (exactly_once=false)", "keel_produce_idem"),
        )
    ] + [
        {
            "op": "consume + decode",
            "raw_ev_per_s": n / m["raw_consume"],
            "keel_ev_per_s": n / m["keel_consume"],
            "ratio": m["raw_consume"] / m["keel_consume"],
        },
    ]
    report(
        "kafka",
        f"Kafka adapter vs raw clients, {n:,} events of ~{sum(len(e.value) for e in events) // n} B, median of {args.repeat}",
        rows,
        {"target": "ratio >= 0.5"},
    )


if __name__ == "__main__":
    main()
