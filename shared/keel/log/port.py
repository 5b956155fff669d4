"""The EventLog port. Shaped after Kafka so that every adapter can honour it.

Offsets are per (topic, partition), increase within it, and may have gaps (the embedded adapter
uses one global sequence, so a topic's offsets skip the other topics' events). A committed
position is the *next* offset to read, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An encoded event on its way in: the key is the event's subject, the time its occurred_at."""

    topic: str
    key: str
    timestamp_ms: int
    value: bytes
    sig: bytes | None = None  # the writer's signature record (keel.signing), kept beside value
    event_type: str = ""  # for transports with headers: lets generic tools route undecoded
    writer: str = ""  # the identity that produced it: a secured broker takes it as that principal


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: str
    timestamp_ms: int
    value: bytes
    sig: bytes | None = None
    # When the log stored it, stamped by the log, never by the writer (SQLite: its append
    # clock; Kafka: the broker's LogAppendTime). 0: not known (stored before logs stamped it).
    recorded_ms: int = 0

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


class Subscription(Protocol):
    """A consumer-group member following topics from the group's committed positions."""

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[LogRecord]:
        """Next records after those already returned; waits up to `timeout` s for new ones."""
        ...

    def commit(self) -> None:
        """Durably record everything returned by `poll` so far as processed by the group."""
        ...

    def close(self) -> None: ...


class EventLog(Protocol):
    """An append-only, durable, replayable log of encoded events."""

    def append(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        """Append a batch atomically and durably; returns the stored records in order."""
        ...

    def read(
        self,
        topics: Sequence[str] | None = None,
        start: Mapping[TopicPartition, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[LogRecord]:
        """Records of `topics` (default: all) from `start` (default: the beginning), in order."""
        ...

    def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """Per partition of `topics` that holds records: the offset the next append will get
        (Kafka: transaction markers take offsets too). Cheap: no record is read."""
        ...

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        """Store the group's next offsets to read."""
        ...

    def committed(self, group: str) -> dict[TopicPartition, int]: ...

    def subscribe(self, group: str, topics: Sequence[str]) -> Subscription: ...

    def topics(self) -> list[str]: ...

    def close(self) -> None:
        """Release resources; calling it again is a no-op."""
        ...
