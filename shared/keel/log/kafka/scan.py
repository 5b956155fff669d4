"""The reading side without a group: end offsets, partition counts and scans, on librdkafka.

Scans (`read`: the projector's catch-up, verify, replays) use an assigned librdkafka consumer,
which fetches and parses off the GIL (decision 0019); end offsets are one ListOffsets request
per broker through a kept admin client (decision 0012).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keel.errors import KeelError
from keel.log import provision
from keel.log.kafka.wire import SIG_HEADER, TIME_HEADER, TIMESTAMP_LOG_APPEND_TIME, Names
from keel.log.port import LogRecord, TopicPartition
from keel.log.records import FIELDS

# LogRecord's slots set through their descriptors (keel.log.records), bound once
_SETTERS = tuple(getattr(LogRecord, name).__set__ for name in FIELDS)

SCAN_STALL_S = 90  # longer than transaction.timeout.ms: an abandoned transaction must resolve


class Scanner:
    """Partition counts, end offsets and bounded scans for one principal's view of a prefix."""

    def __init__(self, bootstrap: str, config: dict[str, Any], names: Names) -> None:
        self.bootstrap, self.config, self.names = bootstrap, config, names
        # Highest offset + 1 this handle appended per partition: a read_committed consumer's
        # end offset (the last stable offset) can lag a commit by the time the broker takes to
        # write its markers, and a read right after an append must still see the append.
        self.written: dict[tuple[str, int], int] = {}
        self._admin: Any = None
        self._part_counts: dict[str, int] = {}  # logical topic -> partitions (they only grow)
        self._counts_at = 0.0
        self._lock = threading.Lock()

    def saw_appended(self, records: Sequence[LogRecord]) -> None:
        for r in records:
            key = (self.names.phys(r.topic), r.partition)
            self.written[key] = max(self.written.get(key, 0), r.offset + 1)

    def _admin_client(self) -> Any:
        """The admin client kept for end offsets and partition counts (hold `_lock`)."""
        if self._admin is None:
            self._admin = provision._admin(self.bootstrap, self.config)
        return self._admin

    def partition_counts(self, topics: Sequence[str], fresh: bool = False) -> dict[str, int]:
        """Partitions per topic from the metadata, asked again at most once a second while a
        topic is missing (one created later; `fresh`: at once) and every 10 s (one given more
        partitions)."""
        with self._lock:
            missing = any(t not in self._part_counts for t in topics)
            age = time.monotonic() - self._counts_at
            if (missing and (fresh or age > 1.0)) or age > 10.0:
                meta = self._admin_client().list_topics(timeout=10).topics
                self._counts_at = time.monotonic()
                prefix = self.names.prefix
                for name, found in meta.items():  # every topic of this prefix: one ask serves all
                    if name.startswith(prefix) and not found.error and found.partitions:
                        self._part_counts[self.names.logical(name)] = len(found.partitions)
            return dict(self._part_counts)

    def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """One ListOffsets request per broker (read-committed ends) through librdkafka's admin
        client, kept for the purpose. Not aiokafka's: readers keeping views fresh ask this
        often, and aiokafka's Python-side protocol work cost ~0.8 ms of CPU (with the GIL) a
        call against librdkafka's ~0.5 ms, mostly in its own threads (decision 0012)."""
        from confluent_kafka import IsolationLevel
        from confluent_kafka import TopicPartition as CTP
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

        parts = self.partition_counts(topics)
        phys = self.names.phys
        with self._lock:
            admin = self._admin_client()
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
            asked = {CTP(phys(t), p): latest for t in topics for p in range(parts.get(t, 0))}
            ends = _listed_offsets(admin, asked, IsolationLevel.READ_COMMITTED) if asked else {}
        # this handle's own appends count even before the broker's markers make them stable
        out = {
            (self.names.logical(topic), part): max(int(o), self.written.get((topic, part), 0))
            for (topic, part), o in ends.items()
        }
        return {tp: o for tp, o in out.items() if o}

    def scan(
        self, topics: Sequence[str], start: Mapping[TopicPartition, int] | None
    ) -> Iterator[LogRecord]:
        """Records from start (or the beginning) up to the end offsets as they were when the
        scan began.

        Read with a librdkafka consumer (assigned, no group), not aiokafka: librdkafka fetches
        and parses in its own threads, while aiokafka's loop thread took the GIL from the fold
        reading beside it (the projector's read cost ~3x the bare loop's, decision 0019)."""
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as CTP

        counts = self.partition_counts(topics, fresh=True)
        stops = self.end_offsets(topics)
        firsts = {
            (t, p): (start or {}).get((t, p), 0) for t in topics for p in range(counts.get(t, 0))
        }
        pending = {tp: stops[tp] for tp, first in firsts.items() if first < stops.get(tp, 0)}
        if not pending:
            return
        consumer = Consumer(
            {
                **self.config,
                "bootstrap.servers": self.bootstrap,
                "group.id": f"{self.names.prefix}scan-{uuid.uuid4().hex}",  # required; not joined
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",  # a start before retention kept: its first
                "isolation.level": "read_committed",  # aborted appends are never seen
                "enable.partition.eof": True,  # how a partition ending in markers is known done
                "fetch.wait.max.ms": 100,
                "log_level": 2,
            }
        )
        try:
            consumer.assign([CTP(self.names.phys(t), p, firsts[(t, p)]) for t, p in pending])
            yield from self._consume_until(consumer, pending)
        finally:
            consumer.close()

    def _consume_until(
        self, consumer: Any, pending: dict[TopicPartition, int]
    ) -> Iterator[LogRecord]:
        """Every record of `pending`'s partitions before its stop offset. A partition is done
        at the record just before its stop, or when librdkafka reports its end at or past the
        stop (transaction markers take offsets but are never returned)."""
        from confluent_kafka import KafkaError
        from confluent_kafka import TopicPartition as CTP

        # client-level errors that retrying will not cure: credentials or TLS refused
        refused = {KafkaError._AUTHENTICATION, KafkaError._SSL}
        # (physical topic, partition) -> (logical tp, stop): one lookup a message, not three
        stops: dict[tuple[str, int], tuple[TopicPartition, int]] = {
            (self.names.phys(t), p): ((t, p), stop) for (t, p), stop in pending.items()
        }
        append_time = TIMESTAMP_LOG_APPEND_TIME
        time_header, sig_header = TIME_HEADER, SIG_HEADER
        new = object.__new__
        f_topic, f_part, f_off, f_key, f_ts, f_val, f_sig, f_rec = _SETTERS
        idle_since = time.monotonic()
        while pending:
            msgs = consumer.consume(5000, timeout=0.5)
            done: list[TopicPartition] = []
            # the partition of the message before: a fetch hands over runs of one partition
            last_topic, last_part, found = None, -1, None
            for m in msgs:
                err = m.error()
                topic, part = m.topic(), m.partition()
                if part != last_part or topic != last_topic:
                    found = stops.get((topic, part))  # (None, -1): about the client
                    last_topic, last_part = topic, part
                if err is not None:
                    self._check(m, err, found, refused)
                    if found is None or m.offset() < found[1]:
                        continue
                    tp, finished = found[0], True  # its end, past any trailing markers
                elif found is None:
                    continue
                else:
                    offset, (tp, stop) = m.offset(), found
                    if offset >= stop:
                        finished = True
                    else:
                        # the writer's time and signature (keel.log.kafka.wire), read here
                        # rather than through a call: this loop runs once a record
                        hs = m.headers()
                        writer_ms = sig = None
                        if hs:
                            named = dict(hs)
                            writer_ms, sig = named.get(time_header), named.get(sig_header)
                        ts_type, ts = m.timestamp()
                        key = m.key()
                        r = new(LogRecord)
                        f_topic(r, tp[0])
                        f_part(r, tp[1])
                        f_off(r, offset)
                        f_key(r, key.decode() if key else "")
                        f_ts(r, ts if writer_ms is None else int(writer_ms))
                        f_val(r, m.value())
                        f_sig(r, sig)
                        f_rec(r, ts if ts_type == append_time else 0)
                        yield r
                        finished = offset + 1 >= stop
                if finished:
                    del stops[(topic, part)]
                    del pending[tp]
                    done.append(tp)
                    last_part = -1  # looked up again: it is gone
            if done:  # stop fetching what would be dropped
                consumer.pause([CTP(self.names.phys(t), p) for t, p in done])
            if msgs:
                idle_since = time.monotonic()
            elif pending and time.monotonic() - idle_since > SCAN_STALL_S:
                raise KeelError(
                    f"reading {sorted(t for t, _ in pending)} from {self.bootstrap} "
                    f"made no progress for {SCAN_STALL_S} s",
                    hint="check the broker's health (`keel topics check`)",
                )

    def _check(self, m: Any, err: Any, found: Any, refused: set[int]) -> None:
        """Raise for an error that retrying will not cure: a client-level one (credentials or
        TLS refused, fatal) or a partition's other than its end; a transient client error
        (e.g. a connection dropped) is librdkafka's to retry."""
        from confluent_kafka import KafkaError

        if m.topic() is None:  # about the client, not a partition
            if err.fatal() or err.code() in refused:
                raise KeelError(
                    f"reading from {self.bootstrap} failed: {err.str()}",
                    hint="check this process's Kafka credentials (KEEL_SECRETS) and "
                    "the broker's health (`keel topics check`)",
                )
            return
        if found is not None and err.code() != KafkaError._PARTITION_EOF:
            raise KeelError(
                f"reading {m.topic()}[{m.partition()}] from {self.bootstrap} failed: {err.str()}",
                hint="check the principal's ACLs and the broker's health (`keel topics check`)",
            )

    def close(self) -> None:
        self._admin = None


# A partition just created (or whose leader just moved) answers "not leader" until its election
# settles, usually within a second; such errors are worth a few short retries, others are not.
_SETTLING = ("NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART")


def _listed_offsets(
    admin: Any, asked: dict[Any, Any], isolation: Any
) -> dict[tuple[str, int], int]:
    """The end offsets of `asked`, retrying partitions whose leadership is still settling (at
    most 20 tries, 0.25 s apart); any other error, or one that outlasts them, is raised."""
    from confluent_kafka import KafkaException

    ends: dict[tuple[str, int], int] = {}
    for attempt in range(20):
        found = admin.list_offsets(asked, isolation_level=isolation, request_timeout=30)
        retry = {}
        for tp, f in found.items():
            try:
                ends[(tp.topic, tp.partition)] = f.result().offset
            except KafkaException as exc:
                if exc.args[0].name() not in _SETTLING or attempt == 19:
                    raise
                retry[tp] = asked[tp]
        if not retry:
            return ends
        asked = retry
        time.sleep(0.25)
    return ends
