"""A group's offsets from outside its members (`commit`, `committed`), on aiokafka.

Where aiokafka still serves (decision 0026): librdkafka's admin ListConsumerGroupOffsets
crashed the process (SIGSEGV) when the group's coordinator was not loaded yet
(confluentinc/librdkafka#5040), and the projector moves its group to the views' positions
before it joins. aiokafka runs on a private asyncio loop in a daemon thread, started on first
use, so the port stays synchronous. The members themselves are librdkafka's (member.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from keel.log.kafka.wire import Names
from keel.log.port import TopicPartition

T = TypeVar("T")


class _Loop:
    """One asyncio loop in a daemon thread; run coroutines on it from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="keel-kafka", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class Groups:
    """aiokafka consumers of one principal on one prefix; the loop thread starts on first use."""

    def __init__(self, bootstrap: str, config: dict[str, Any], names: Names) -> None:
        self.bootstrap, self.config, self.names = bootstrap, config, names
        self._loop: _Loop | None = None

    @property
    def loop(self) -> _Loop:
        if self._loop is None:
            self._loop = _Loop()
        return self._loop

    def consumer(self, group: str | None = None) -> Any:
        from aiokafka import AIOKafkaConsumer

        async def make() -> Any:
            c = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                **self.config,
                group_id=self.names.prefix + group if group else None,
                isolation_level="read_committed",  # aborted appends are never seen
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 << 20,
                fetch_max_wait_ms=100,
            )
            await c.start()
            return c

        return self.loop.run(make())

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        from aiokafka import TopicPartition as TP
        from aiokafka.structs import OffsetAndMetadata

        consumer = self.consumer(group)
        try:
            offsets = {
                TP(self.names.phys(t), p): OffsetAndMetadata(o, "")
                for (t, p), o in positions.items()
            }
            self.loop.run(_assign(consumer, list(offsets)))
            self.loop.run(consumer.commit(offsets))
        finally:
            self.loop.run(consumer.stop())

    def committed(self, group: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """The group's committed positions on `topics`. Asked through an aiokafka consumer of
        the group (never joined): librdkafka's admin ListConsumerGroupOffsets crashed the
        process (SIGSEGV) when the group's coordinator was not loaded yet, the first time a
        fresh broker was asked (confluentinc/librdkafka#5040)."""
        consumer = self.consumer(group)
        try:
            tps = self._partitions(consumer, topics)

            async def fetch() -> list[Any]:
                return list(await asyncio.gather(*(consumer.committed(tp) for tp in tps)))

            offsets = self.loop.run(fetch()) if tps else []
        finally:
            self.loop.run(consumer.stop())
        return {
            (self.names.logical(tp.topic), tp.partition): int(o)
            for tp, o in zip(tps, offsets, strict=True)
            if o is not None and o >= 0
        }

    def _partitions(self, consumer: Any, topics: Sequence[str]) -> list[Any]:
        from aiokafka import TopicPartition as TP

        async def parts() -> list[Any]:
            out = []
            for t in topics:
                ps = consumer.partitions_for_topic(self.names.phys(t))
                if ps is None:
                    await consumer._client.force_metadata_update()
                    ps = consumer.partitions_for_topic(self.names.phys(t)) or set()
                out += [TP(self.names.phys(t), p) for p in sorted(ps)]
            return out

        return self.loop.run(parts())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


async def _assign(consumer: Any, tps: list[Any]) -> None:
    consumer.assign(tps)  # aiokafka builds futures here, so it must run on the loop
