"""The consumer-group member (`subscribe`): confluent-kafka (librdkafka), not aiokafka.

librdkafka runs the group protocol (joins, heartbeats, fetches) in its own C threads, so an
idle member costs Python nothing and a poll hands over what is already fetched. Decision 0026
measured it against the aiokafka member it replaced (bench/bench_kafka_clients.py): level on
throughput when the machine is idle, ~1.5x when it is busy, lower delivery delay, a fifth of
the idle CPU; its group join is ~0.2 s slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keel.errors import KeelError
from keel.log.kafka.wire import TIMESTAMP_LOG_APPEND_TIME, Names, time_and_sig
from keel.log.port import LogRecord


class KafkaSubscription:
    """A consumer-group member that commits only what `poll` returned, on `commit`."""

    def __init__(
        self,
        bootstrap: str,
        config: dict[str, Any],
        names: Names,
        group: str,
        topics: Sequence[str],
    ) -> None:
        from confluent_kafka import Consumer

        self.bootstrap, self.names = bootstrap, names
        self._consumer = Consumer(
            {
                **config,
                "bootstrap.servers": bootstrap,
                "group.id": names.prefix + group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",  # aborted appends are never seen
                "max.partition.fetch.bytes": 4 << 20,
                "fetch.wait.max.ms": 100,
                # aiokafka's defaults, which the group had before (decision 0026): a member
                # killed without leaving is replaced after 10 s, not librdkafka's 45 s
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 3_000,
                "log_level": 2,
            }
        )
        self._consumer.subscribe([names.phys(t) for t in topics])
        self._returned: dict[tuple[str, int], int] = {}

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[LogRecord]:
        # consume(n, timeout) waits for n records or the whole timeout: wait for the first
        # record only, then take what is already fetched without waiting
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        msgs: list[Any] = [first]  # librdkafka messages (untyped: a record's fields are set)
        if max_records > 1:
            msgs += self._consumer.consume(max_records - 1, 0)
        out = []
        logical: dict[str, str] = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.fatal():
                    raise KeelError(
                        f"consumer group on {self.bootstrap} failed: {err.str()}",
                        hint="check the broker's health and this process's credentials",
                    )
                continue  # informational (e.g. partition EOF): librdkafka carries on
            phys = m.topic()
            topic = logical.get(phys)
            if topic is None:
                topic = logical[phys] = self.names.logical(phys)
            writer_ms, sig = time_and_sig(m.headers())
            ts_type, ts = m.timestamp()
            key = m.key()
            offset = m.offset()
            out.append(
                LogRecord(
                    topic,
                    m.partition(),
                    offset,
                    key.decode() if key else "",
                    ts if writer_ms is None else writer_ms,
                    m.value(),
                    sig,
                    ts if ts_type == TIMESTAMP_LOG_APPEND_TIME else 0,
                )
            )
            self._returned[(phys, m.partition())] = offset + 1
        return out

    def commit(self) -> None:
        from confluent_kafka import TopicPartition as CTP

        if self._returned:
            offsets = [CTP(t, p, o) for (t, p), o in self._returned.items()]
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()
