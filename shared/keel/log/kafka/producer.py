"""The writing side: a confluent-kafka (librdkafka) producer, one transaction per append.

Idempotent, acks=all, key = subject (per-aggregate order), timestamp = occurred_at. Delivery
reports come back per partition in produce order; `_in_input_order` maps them back to the
caller's order (decision 0005).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from typing import Any

from keel.errors import KeelError
from keel.log.kafka.wire import TIMESTAMP_LOG_APPEND_TIME, Names, headers
from keel.log.port import LogRecord, OutgoingEvent


def unique_transactional_id(prefix: str, principal: str) -> str:
    """Unique per producer instance: no fencing between processes is wanted, only atomic
    batches. Starts with keel-<prefix><principal>: what the principal's ACL allows
    (keel.secure.acl)."""
    return f"keel-{prefix}{principal}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"


class _Report:
    """Delivery callback shared by a whole batch: appends (error, message)."""

    __slots__ = ("sink",)

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def __call__(self, err: Any, msg: Any) -> None:
        self.sink((err, msg))


class TransactionalProducer:
    """One librdkafka producer, made on first use (readers never need one)."""

    def __init__(
        self,
        bootstrap: str,
        config: dict[str, Any],
        names: Names,
        transactional_id: str,
        exactly_once: bool = True,
    ) -> None:
        self.bootstrap, self.config, self.names = bootstrap, config, names
        self.transactional_id, self.exactly_once = transactional_id, exactly_once
        self._handle: Any = None
        self.fenced = False  # a newer producer with our transactional ID took over

    @property
    def _producer(self) -> Any:
        if self._handle is None:
            self._handle = self._new_producer()
            if self.exactly_once:
                self._handle.init_transactions(30)
        return self._handle

    def start(self) -> None:
        """Initialise now: with a stable transactional ID, this fences a killed predecessor
        (the broker aborts its open transaction at once instead of after the timeout)."""
        self._producer  # noqa: B018

    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer(
            {
                **self.config,
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                # Each append is one transaction. Idempotence alone is not enough: after a
                # broker crash librdkafka may bump the producer epoch and re-send a batch the
                # broker had already written (confluentinc/librdkafka#4953); a transaction that
                # did not commit is invisible to read_committed consumers instead.
                **(
                    {
                        "transactional.id": self.transactional_id,
                        # A writer killed mid-transaction holds back read_committed readers
                        # until the broker aborts it; keep that window short.
                        "transaction.timeout.ms": 30000,
                    }
                    if self.exactly_once
                    else {}
                ),
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.timeout.ms": 30000,  # <= transaction.timeout.ms
                # librdkafka logs every reconnect attempt; failures reach us through delivery
                # reports and raise, so only critical log lines are worth printing.
                "log_level": 2,
            }
        )

    def append(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        """exactly_once: one transaction, committed exactly once on return, invisible to
        read_committed consumers on KeelError. Otherwise idempotent produce + flush."""
        if self.fenced:
            raise self.fenced_error()
        from confluent_kafka import KafkaException

        delivered: list[Any] = []
        produce, report = self._producer.produce, _Report(delivered.append)  # one callback object
        phys = {t: self.names.phys(t) for t in {e.topic for e in events}}
        try:
            if self.exactly_once:
                self._producer.begin_transaction()
            for e in events:
                while True:
                    try:
                        produce(
                            phys[e.topic],
                            e.value,
                            e.key,
                            timestamp=e.timestamp_ms,
                            headers=headers(e),
                            on_delivery=report,
                        )
                        break
                    except BufferError:  # local queue full: let deliveries drain, then retry
                        self._producer.poll(0.1)
            if self.exactly_once:
                self._commit()
            else:
                self._flush(len(events), delivered)
        except KafkaException as exc:
            if self.exactly_once:
                if not is_fenced(exc):
                    self._abort()
                if is_fenced(exc) or self.fenced:
                    self.fenced = True
                    raise self.fenced_error() from None
            raise KeelError(
                f"Kafka at {self.bootstrap} did not commit a batch of {len(events)} events: "
                f"{exc.args[0].str() if exc.args else exc}",
                hint="nothing of the batch is visible to consumers; appending it again is safe",
            ) from None
        return _in_input_order(events, [m for _, m in delivered], phys)

    def _flush(self, n: int, delivered: list[Any]) -> None:
        remaining = self._producer.flush(60)
        errors = [f"{m.topic()}/{m.key()!r}: {e.str()}" for e, m in delivered if e is not None]
        if remaining or errors:
            raise KeelError(
                f"Kafka at {self.bootstrap} did not acknowledge {remaining + len(errors)} of "
                f"{n} events: {'; '.join(errors[:3]) or 'timed out'}",
                hint="events not acknowledged may or may not be stored; re-publishing is safe "
                "because consumers skip duplicates by event_id",
            )

    def _commit(self) -> None:
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + 120
        while True:
            try:
                self._producer.commit_transaction(60)
                return
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if err is None or not err.retriable() or time.monotonic() > deadline:
                    raise

    def _abort(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self._producer.abort_transaction(60)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if is_fenced(exc):
                # Another producer with this transactional ID took over: re-initialising would
                # fence *it* in turn, and both would die. This one stops instead.
                self.fenced = True
            elif err is not None and err.fatal():
                # The producer is broken (e.g. after a broker restart): start a fresh one.
                self._handle = None  # the next append makes and initialises one

    def fenced_error(self) -> KeelError:
        return KeelError(
            f"another writer with this one's identity ({self.transactional_id}) took over on "
            f"Kafka at {self.bootstrap}; this one stops (nothing of its last batch is visible)",
            hint="run one instance at a time (e.g. one projector); the newer one keeps going",
        )

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush(30)
            self._handle = None  # destroy the librdkafka handle now, not at GC


def is_fenced(exc: Exception) -> bool:
    from confluent_kafka import KafkaError

    err = exc.args[0] if exc.args else None
    codes = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    return isinstance(err, KafkaError) and err.code() in codes


def _in_input_order(
    events: Sequence[OutgoingEvent], msgs: list[Any], phys: dict[str, str]
) -> list[LogRecord]:
    """Delivery reports arrive per partition in produce order, not in input order. Keys pin
    partitions, so each input finds its partition by key, then the next offset reported for
    that partition."""
    partition_of: dict[tuple[str, bytes], int] = {}
    offsets: dict[tuple[str, int], list[int]] = {}
    stamped: dict[tuple[str, int, int], int] = {}
    for m in msgs:
        kind, ts = m.timestamp()
        if kind == TIMESTAMP_LOG_APPEND_TIME:
            stamped[(m.topic(), m.partition(), m.offset())] = int(ts)
        tp = (m.topic(), m.partition())
        partition_of[(tp[0], m.key())] = tp[1]
        got = offsets.get(tp)
        if got is None:
            offsets[tp] = got = []
        got.append(m.offset())
    cursors = {tp: iter(offs) for tp, offs in offsets.items()}
    out = []
    for e in events:
        topic = phys[e.topic]
        part = partition_of[(topic, e.key.encode())]
        offset = next(cursors[(topic, part)])
        out.append(
            LogRecord(
                e.topic,
                part,
                offset,
                e.key,
                e.timestamp_ms,
                e.value,
                e.sig,
                stamped.get((topic, part, offset), 0),
            )
        )
    return out
