"""The alternative decision 0026 measured and dropped: a consumer-group member on aiokafka
(Keel's member until then), on the log's private loop thread. Kept here so
bench/bench_kafka_clients.py can run the comparison again."""

from __future__ import annotations

from typing import Any

from keel.log.kafka.groups import Groups
from keel.log.kafka.wire import SIG_HEADER, TIME_HEADER
from keel.log.port import LogRecord


class AiokafkaSubscription:
    """A consumer-group member (aiokafka) that commits only what `poll` returned, on `commit`."""

    def __init__(self, groups: Groups, group: str, topics: list[str]) -> None:
        self._groups = groups
        self._consumer = groups.consumer(group)
        groups.loop.run(_subscribe(self._consumer, [groups.names.phys(t) for t in topics]))
        self._returned: dict[Any, int] = {}

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[LogRecord]:
        c = self._consumer
        batch = self._groups.loop.run(
            c.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        )
        logical = self._groups.names.logical
        out = []
        for tp, msgs in batch.items():
            for m in msgs:
                out.append(
                    LogRecord(
                        logical(tp.topic),
                        tp.partition,
                        m.offset,
                        m.key.decode() if m.key else "",
                        writer_time(m),
                        m.value,
                        sig(m.headers),
                        recorded(m),
                    )
                )
            if msgs:
                self._returned[tp] = msgs[-1].offset + 1
        return out

    def commit(self) -> None:
        if self._returned:
            self._groups.loop.run(self._consumer.commit(dict(self._returned)))

    def close(self) -> None:
        self._groups.loop.run(self._consumer.stop())


async def _subscribe(consumer: Any, topics: list[str]) -> None:
    consumer.subscribe(topics)


def writer_time(m: Any) -> int:
    """The writer's timestamp : its header, or the record's (CreateTime
    topics)."""
    for name, value in m.headers or ():
        if name == TIME_HEADER:
            return int(value)
    return int(m.timestamp)


def recorded(m: Any) -> int:
    """The broker's append time  (topics with
    message.timestamp.type=LogAppendTime); 0 for a record whose topic kept the writer's
    CreateTime (recorded time not known)."""
    return int(m.timestamp) if m.timestamp_type == 1 else 0


def sig(found_headers: Any) -> bytes | None:
    """The writer's signature record."""
    for name, value in found_headers or ():
        if name == SIG_HEADER:
            return bytes(value)
    return None
