"""EventLog on Apache Kafka: confluent-kafka produces and scans, aiokafka runs the groups.

Producer: idempotent, acks=all, key = subject (per-aggregate order), timestamp = occurred_at.
Scans (`read`: the projector's catch-up, verify, replays): an assigned librdkafka consumer,
which fetches and parses off the GIL (decision 0019).
Consumer groups (`subscribe`, `commit`): aiokafka on a private asyncio loop in a daemon thread,
so the port stays synchronous for the CLI and the embedded-style callers while group heartbeats
keep running between polls.
Logical topic names get a prefix (default "keel."), so several Keel deployments or test runs can
share one cluster without seeing each other's events.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from keel.errors import KeelError
from keel.log import provision
from keel.log.port import LogRecord, OutgoingEvent, TopicPartition
from keel.secure.credentials import process_principal, secrets_for, split_address, writer_principal
from keel.topics import EVENT_TOPICS, SCHEMAS_TOPIC

T = TypeVar("T")
DEFAULT_PREFIX = "keel."
SCAN_STALL_S = 90  # longer than transaction.timeout.ms: an abandoned transaction must resolve
TIMESTAMP_LOG_APPEND_TIME = 2  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
TIME_HEADER = "keel-time"  # the writer's timestamp (ms): the business time, when Keel writes
SIG_HEADER = "keel-sig"  # the writer's signature record (keel.signing)
AVRO_MAGIC = b"\xc3\x01"  # Avro single-object encoding: marker, then the 8-byte fingerprint
AVRO_CONTENT_TYPE = b"application/vnd.apache.avro+binary; encoding=single-object"


def _transactional_id(prefix: str, principal: str) -> str:
    # Unique per producer instance: no fencing between processes is wanted, only atomic batches.
    # Starts with keel-<prefix><principal>: what the principal's ACL allows (keel.secure.acl).
    return f"keel-{prefix}{principal}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"


class _Report:
    """Delivery callback shared by a whole batch: appends (error, message)."""

    __slots__ = ("sink",)

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def __call__(self, err: Any, msg: Any) -> None:
        self.sink((err, msg))


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


class KafkaEventLog:
    remote = True  # asking for end offsets is a round trip: readers cache them (FreshViews)

    def __init__(
        self,
        bootstrap: str,
        prefix: str = DEFAULT_PREFIX,
        provision_topics: bool = True,
        exactly_once: bool = True,
        transactional_id: str | None = None,
        principal: str | None = None,
    ) -> None:
        from keel.extras import need

        need("kafka", "confluent_kafka", "aiokafka")
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.exactly_once = exactly_once
        # Who this handle is to a secured broker (keel.secure); None secrets: an open broker.
        self.secrets = secrets_for(*split_address(bootstrap))
        self.principal = principal or process_principal()
        self.transactional_id = transactional_id or _transactional_id(prefix, self.principal)
        provision.check_reachable(bootstrap, self.client_config())
        if provision_topics:
            provision.ensure(bootstrap, prefix, self.secrets, self.principal)
        self._producer_handle: Any = None  # made on first append: readers never need one
        self._siblings: dict[str, KafkaEventLog] = {}  # other principals this process holds
        self._loop = _Loop()
        self._closed = False
        self._fenced = False  # a newer producer with our transactional ID took over
        # Highest offset + 1 this handle appended per partition: a read_committed consumer's
        # end offset (the last stable offset) can lag a commit by the time the broker takes to
        # write its markers, and a read right after an append must still see the append.
        self._written: dict[tuple[str, int], int] = {}
        self._ends_admin: Any = None
        self._part_counts: dict[str, int] = {}  # logical topic -> partitions (they only grow)
        self._counts_at = 0.0
        self._ends_lock = threading.Lock()

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for this handle's principal (empty for an open broker)."""
        return self.secrets.librdkafka(self.principal) if self.secrets else {}

    @property
    def _producer(self) -> Any:
        if self._producer_handle is None:
            self._producer_handle = self._new_producer()
            if self.exactly_once:
                self._producer_handle.init_transactions(30)
        return self._producer_handle

    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        return Producer(
            {
                **self.client_config(),
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

    def for_writer(self, role: str) -> KafkaEventLog:
        """A log handle whose producer has a stable transactional ID for `role`: when a new
        incarnation starts, the broker aborts the open transaction of the one that was killed
        at once (instead of after the timeout), so readers see past it immediately. Its
        principal is the role's (projector-NAME writes as the projector) when held."""
        principal = self.principal
        if self.secrets is not None:
            principal = writer_principal(self.secrets, role.split("-", 1)[0], self.principal)
        handle = KafkaEventLog(
            self.bootstrap,
            self.prefix,
            provision_topics=False,
            exactly_once=self.exactly_once,
            transactional_id=f"keel-{self.prefix}{role}",
            principal=principal,
        )
        handle._producer  # noqa: B018 (initialise now: fence a killed predecessor at start)
        return handle

    def _as(self, principal: str) -> KafkaEventLog:
        """This process's handle for another principal it holds credentials for."""
        if principal == self.principal:
            return self
        handle = self._siblings.get(principal)
        if handle is None:
            handle = self._siblings[principal] = KafkaEventLog(
                self.bootstrap,
                self.prefix,
                provision_topics=False,
                exactly_once=self.exactly_once,
                principal=principal,
            )
        return handle

    def _routed(self, events: Sequence[OutgoingEvent]) -> list[LogRecord] | None:
        """On a secured broker each event goes in as its writer's principal where this process
        holds it (a developer's CLI running the services inline writes as each service); runs
        of events with one principal are one transaction each. None: all are this handle's."""
        if self.secrets is None:
            return None
        secrets = self.secrets
        # one lookup per writer, not per event (each looks for a credential file)
        principal_of = {
            w: writer_principal(secrets, w, self.principal) for w in {e.writer for e in events}
        }
        whose = [principal_of[e.writer] for e in events]
        if all(w == self.principal for w in whose):
            return None
        out: list[LogRecord] = []
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or whose[i] != whose[start]:
                handle = self._as(whose[start])
                records = handle._append_own(events[start:i])
                for r in records:
                    key = (self._phys(r.topic), r.partition)
                    self._written[key] = max(self._written.get(key, 0), r.offset + 1)
                out += records
                start = i
        return out

    # -- names -----------------------------------------------------------------------------
    def _phys(self, topic: str) -> str:
        return self.prefix + topic

    def _logical(self, topic: str) -> str:
        return topic[len(self.prefix) :] if topic.startswith(self.prefix) else topic

    # -- producing -------------------------------------------------------------------------
    def append(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        """exactly_once (default): one transaction; on return every event is committed exactly
        once; on KeelError none is visible to (read_committed) consumers, so re-appending the
        batch is safe. Otherwise idempotent produce + flush: faster, but a broker crash can
        leave a re-sent batch twice (consumers then skip duplicates by event_id)."""
        if not events:
            return []
        routed = self._routed(events)
        return routed if routed is not None else self._append_own(events)

    def _append_own(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        if self._fenced:
            raise self._fenced_error()
        from confluent_kafka import KafkaException

        delivered: list[Any] = []
        produce, report = self._producer.produce, _Report(delivered.append)  # one callback object
        phys = {t: self._phys(t) for t in {e.topic for e in events}}
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
                            headers=_headers(e),
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
                if not _fenced(exc):
                    self._abort()
                if _fenced(exc) or self._fenced:
                    self._fenced = True
                    raise self._fenced_error() from None
            raise KeelError(
                f"Kafka at {self.bootstrap} did not commit a batch of {len(events)} events: "
                f"{exc.args[0].str() if exc.args else exc}",
                hint="nothing of the batch is visible to consumers; appending it again is safe",
            ) from None
        msgs = [m for _, m in delivered]
        for m in msgs:
            key = (m.topic(), m.partition())
            self._written[key] = max(self._written.get(key, 0), m.offset() + 1)
        return self._in_input_order(events, msgs)

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
            if _fenced(exc):
                # Another producer with this transactional ID took over: re-initialising would
                # fence *it* in turn, and both would die. This one stops instead.
                self._fenced = True
            elif err is not None and err.fatal():
                # The producer is broken (e.g. after a broker restart): start a fresh one.
                self._producer_handle = None  # the next append makes and initialises one

    def _fenced_error(self) -> KeelError:
        return KeelError(
            f"another writer with this one's identity ({self.transactional_id}) took over on "
            f"Kafka at {self.bootstrap}; this one stops (nothing of its last batch is visible)",
            hint="run one instance at a time (e.g. one projector); the newer one keeps going",
        )

    def _in_input_order(self, events: Sequence[OutgoingEvent], msgs: list[Any]) -> list[LogRecord]:
        """Delivery reports arrive per partition in produce order, not in input order. Keys pin
        partitions, so each input finds its partition by key, then the next offset reported
        for that partition."""
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
        phys = {t: self._phys(t) for t in {e.topic for e in events}}
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

    # -- reading ---------------------------------------------------------------------------
    def _consumer(self, group: str | None = None) -> Any:
        from aiokafka import AIOKafkaConsumer

        async def make() -> Any:
            c = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                **(self.secrets.aiokafka(self.principal) if self.secrets else {}),
                group_id=self.prefix + group if group else None,
                isolation_level="read_committed",  # aborted appends are never seen
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 << 20,
                fetch_max_wait_ms=100,
            )
            await c.start()
            return c

        return self._loop.run(make())

    def _ends_client(self) -> Any:
        """The admin client kept for end offsets and partition counts (hold `_ends_lock`)."""
        if self._ends_admin is None:
            self._ends_admin = provision._admin(self.bootstrap, self.client_config())
        return self._ends_admin

    def _partition_counts(self, topics: Sequence[str], fresh: bool = False) -> dict[str, int]:
        """Partitions per topic from the metadata, asked again at most once a second while a
        topic is missing (one created later; `fresh`: at once) and every 10 s (one given more
        partitions). Hold `_ends_lock`."""
        missing = any(t not in self._part_counts for t in topics)
        age = time.monotonic() - self._counts_at
        if (missing and (fresh or age > 1.0)) or age > 10.0:
            meta = self._ends_client().list_topics(timeout=10).topics
            self._counts_at = time.monotonic()
            for name, found in meta.items():  # every topic of this prefix: one ask serves all
                if name.startswith(self.prefix) and not found.error and found.partitions:
                    self._part_counts[self._logical(name)] = len(found.partitions)
        return self._part_counts

    def _partitions(self, consumer: Any, topics: Sequence[str]) -> list[Any]:
        from aiokafka import TopicPartition as TP

        async def parts() -> list[Any]:
            out = []
            for t in topics:
                ps = consumer.partitions_for_topic(self._phys(t))
                if ps is None:
                    await consumer._client.force_metadata_update()
                    ps = consumer.partitions_for_topic(self._phys(t)) or set()
                out += [TP(self._phys(t), p) for p in sorted(ps)]
            return out

        return self._loop.run(parts())

    def _scan(
        self, topics: Sequence[str], start: Mapping[TopicPartition, int] | None
    ) -> Iterator[LogRecord]:
        """Records from start (or the beginning) up to the end offsets as they were when the
        scan began.

        Read with a librdkafka consumer (assigned, no group), not aiokafka: librdkafka fetches
        and parses in its own threads, while aiokafka's loop thread took the GIL from the fold
        reading beside it (the projector's read cost ~3x the bare loop's, decision 0019)."""
        from confluent_kafka import Consumer
        from confluent_kafka import TopicPartition as CTP

        with self._ends_lock:
            counts = dict(self._partition_counts(topics, fresh=True))
        stops = self.end_offsets(topics)
        firsts = {
            (t, p): (start or {}).get((t, p), 0) for t in topics for p in range(counts.get(t, 0))
        }
        pending = {tp: stops[tp] for tp, first in firsts.items() if first < stops.get(tp, 0)}
        if not pending:
            return
        consumer = Consumer(
            {
                **self.client_config(),
                "bootstrap.servers": self.bootstrap,
                "group.id": f"{self.prefix}scan-{uuid.uuid4().hex}",  # required; never joined
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",  # a start before retention kept: its first
                "isolation.level": "read_committed",  # aborted appends are never seen
                "enable.partition.eof": True,  # how a partition ending in markers is known done
                "fetch.wait.max.ms": 100,
                "log_level": 2,
            }
        )
        try:
            consumer.assign([CTP(self._phys(t), p, firsts[(t, p)]) for t, p in pending])
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
        logical: dict[str, str] = {}
        idle_since = time.monotonic()
        while pending:
            msgs = consumer.consume(5000, timeout=0.5)
            done: list[TopicPartition] = []
            for m in msgs:
                phys = m.topic()
                err = m.error()
                if phys is None:  # about the client, not a partition
                    if err is not None and (err.fatal() or err.code() in refused):
                        raise KeelError(
                            f"reading from {self.bootstrap} failed: {err.str()}",
                            hint="check this process's Kafka credentials (KEEL_SECRETS) and "
                            "the broker's health (`keel topics check`)",
                        )
                    continue  # transient (e.g. a connection dropped): librdkafka retries
                topic = logical.get(phys)
                if topic is None:
                    topic = logical[phys] = self._logical(phys)
                tp = (topic, m.partition())
                stop = pending.get(tp)
                if stop is None:
                    continue
                offset = m.offset()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise KeelError(
                            f"reading {phys}[{tp[1]}] from {self.bootstrap} failed: {err.str()}",
                            hint="check the principal's ACLs and the broker's health "
                            "(`keel topics check`)",
                        )
                    finished = offset >= stop  # the end, past any trailing markers
                elif offset >= stop:
                    finished = True
                else:
                    writer_ms, sig = _time_and_sig(m.headers())
                    ts_type, ts = m.timestamp()
                    key = m.key()
                    yield LogRecord(
                        topic,
                        tp[1],
                        offset,
                        key.decode() if key else "",
                        ts if writer_ms is None else writer_ms,
                        m.value(),
                        sig,
                        ts if ts_type == TIMESTAMP_LOG_APPEND_TIME else 0,
                    )
                    finished = offset + 1 >= stop
                if finished:
                    del pending[tp]
                    done.append(tp)
            if done:  # stop fetching what would be dropped
                consumer.pause([CTP(self._phys(t), p) for t, p in done])
            if msgs:
                idle_since = time.monotonic()
            elif pending and time.monotonic() - idle_since > SCAN_STALL_S:
                raise KeelError(
                    f"reading {sorted(t for t, _ in pending)} from {self.bootstrap} "
                    f"made no progress for {SCAN_STALL_S} s",
                    hint="check the broker's health (`keel topics check`)",
                )

    def read(
        self,
        topics: Sequence[str] | None = None,
        start: Mapping[TopicPartition, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[LogRecord]:
        records = self._scan(list(topics or EVENT_TOPICS), start)
        return records if limit is None else itertools.islice(records, limit)

    def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        """One ListOffsets request per broker (read-committed ends) through librdkafka's admin
        client, kept for the purpose. Not aiokafka's: readers keeping views fresh ask this
        often, and aiokafka's Python-side protocol work cost ~0.8 ms of CPU (with the GIL) a
        call against librdkafka's ~0.5 ms, mostly in its own threads (decision 0012)."""
        from confluent_kafka import IsolationLevel
        from confluent_kafka import TopicPartition as CTP
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

        with self._ends_lock:
            admin = self._ends_client()
            parts = self._partition_counts(topics)
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
            asked = {CTP(self._phys(t), p): latest for t in topics for p in range(parts.get(t, 0))}
            ends = _listed_offsets(admin, asked, IsolationLevel.READ_COMMITTED) if asked else {}
        # this handle's own appends count even before the broker's markers make them stable
        out = {
            (self._logical(topic), part): max(int(o), self._written.get((topic, part), 0))
            for (topic, part), o in ends.items()
        }
        return {tp: o for tp, o in out.items() if o}

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        from aiokafka import TopicPartition as TP
        from aiokafka.structs import OffsetAndMetadata

        consumer = self._consumer(group)
        try:
            offsets = {
                TP(self._phys(t), p): OffsetAndMetadata(o, "") for (t, p), o in positions.items()
            }
            self._loop.run(_assign(consumer, list(offsets)))
            self._loop.run(consumer.commit(offsets))
        finally:
            self._loop.run(consumer.stop())

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed positions on this prefix's topics. Asked through an aiokafka
        consumer of the group (never joined): librdkafka's admin ListConsumerGroupOffsets
        crashed the process (SIGSEGV) when the group's coordinator was not loaded yet, the first
        time a fresh broker was asked (confluentinc/librdkafka#5040)."""
        consumer = self._consumer(group)
        try:
            tps = self._partitions(consumer, self.topics())

            async def fetch() -> list[Any]:
                return list(await asyncio.gather(*(consumer.committed(tp) for tp in tps)))

            offsets = self._loop.run(fetch()) if tps else []
        finally:
            self._loop.run(consumer.stop())
        return {
            (self._logical(tp.topic), tp.partition): int(o)
            for tp, o in zip(tps, offsets, strict=True)
            if o is not None and o >= 0
        }

    # -- the schemas topic -------------------------------------------------------------------
    def publish_schema(self, fingerprint_hex: str, schema_json: str) -> None:
        """Compacted, keyed by fingerprint: published before a schema's first use."""
        self.append(
            [
                OutgoingEvent(
                    SCHEMAS_TOPIC,
                    fingerprint_hex,
                    int(time.time() * 1000),
                    schema_json.encode(),
                )
            ]
        )

    def read_schemas(self) -> dict[str, str]:
        """fingerprint hex -> schema JSON, the latest value per key."""
        return {r.key: r.value.decode() for r in self._scan([SCHEMAS_TOPIC], None)}

    def arrivals(self, topics: Sequence[str], start: Mapping[TopicPartition, int]) -> Arrivals:
        """A wake-up for readers that keep views current: `wait()` says whether records
        arrived on `topics` after the positions `start` (the ends a fold read to)."""
        return Arrivals(self, list(topics), start)

    def subscribe(self, group: str, topics: Sequence[str]) -> KafkaSubscription:
        return KafkaSubscription(self, group, list(topics))

    def topics(self) -> list[str]:
        meta = provision._admin(self.bootstrap, self.client_config()).list_topics(timeout=10).topics
        return sorted(self._logical(t) for t in meta if t.startswith(self.prefix))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sibling in self._siblings.values():
            sibling.close()
        if self._producer_handle is not None:
            self._producer_handle.flush(30)
            self._producer_handle = None  # destroy the librdkafka handle now, not at GC
        self._loop.close()


class Arrivals:
    """Wakes when records arrive: a librdkafka consumer assigned at the given positions, with
    no group membership and no commits, whose long-polling fetches run in librdkafka's threads.
    Python wakes only when a record arrives or a wait times out: an idle watcher costs no
    ListOffsets round trip every few milliseconds (which cost answers beside it ~1 ms of p99
    on two cores; decision 0012). The records themselves are dropped: a fold reads the log."""

    def __init__(
        self, log: KafkaEventLog, topics: list[str], start: Mapping[TopicPartition, int]
    ) -> None:
        from confluent_kafka import Consumer

        self.log, self.topics, self.start = log, topics, dict(start)
        self._consumer = Consumer(
            {
                **log.client_config(),
                "bootstrap.servers": log.bootstrap,
                "group.id": f"{log.prefix}arrivals-{uuid.uuid4().hex}",  # required; never joined
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,  # how long a record can wait for its wake-up
                "log_level": 2,
            }
        )
        self._assigned: set[TopicPartition] = set()
        self._assigned_at = 0.0
        self._assign()

    def _assign(self) -> None:
        """Every partition of the topics, at `start` (a topic or partition made later: from
        its beginning, as all of it is new)."""
        from confluent_kafka import TopicPartition as CTP

        with self.log._ends_lock:
            counts = dict(self.log._partition_counts(self.topics))
        new = [
            (t, p)
            for t in self.topics
            for p in range(counts.get(t, 0))
            if (t, p) not in self._assigned
        ]
        if new:
            self._consumer.incremental_assign(
                [CTP(self.log._phys(t), p, self.start.get((t, p), 0)) for t, p in new]
            )
            self._assigned.update(new)
        self._assigned_at = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """True as soon as any record arrives (within `timeout` seconds), else False."""
        if time.monotonic() - self._assigned_at > 1.0:
            self._assign()
        got = self._consumer.consume(num_messages=10_000, timeout=timeout)
        return any(m.error() is None for m in got)

    def close(self) -> None:
        self._consumer.close()


class KafkaSubscription:
    """A consumer-group member (aiokafka) that commits only what `poll` returned, on `commit`."""

    def __init__(self, log: KafkaEventLog, group: str, topics: list[str]) -> None:
        self._log = log
        self._consumer = log._consumer(group)
        self._log._loop.run(_subscribe(self._consumer, [log._phys(t) for t in topics]))
        self._returned: dict[Any, int] = {}

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[LogRecord]:
        c = self._consumer
        batch = self._log._loop.run(
            c.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        )
        out = []
        for tp, msgs in batch.items():
            for m in msgs:
                out.append(
                    LogRecord(
                        self._log._logical(tp.topic),
                        tp.partition,
                        m.offset,
                        m.key.decode() if m.key else "",
                        _writer_time(m),
                        m.value,
                        _sig(m.headers),
                        _recorded(m),
                    )
                )
            if msgs:
                self._returned[tp] = msgs[-1].offset + 1
        return out

    def commit(self) -> None:
        if self._returned:
            self._log._loop.run(self._consumer.commit(dict(self._returned)))

    def close(self) -> None:
        self._log._loop.run(self._consumer.stop())


async def _assign(consumer: Any, tps: list[Any]) -> None:
    consumer.assign(tps)  # aiokafka builds futures here, so it must run on the loop


async def _subscribe(consumer: Any, topics: list[str]) -> None:
    consumer.subscribe(topics)


def _fenced(exc: Exception) -> bool:
    from confluent_kafka import KafkaError

    err = exc.args[0] if exc.args else None
    codes = (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)
    return isinstance(err, KafkaError) and err.code() in codes


def _headers(e: OutgoingEvent) -> list[tuple[str, bytes]]:
    """What generic tools (kcat, Connect, ksqlDB) route on without decoding: the content type,
    the writer schema's fingerprint (the schemas topic's key) and the event type."""
    out: list[tuple[str, bytes]] = []
    if e.value[:2] == AVRO_MAGIC and len(e.value) >= 10:
        out.append(("content-type", AVRO_CONTENT_TYPE))
        out.append(("keel-schema-fingerprint", e.value[2:10].hex().encode()))
    elif e.topic == SCHEMAS_TOPIC:
        out.append(("content-type", b"application/json"))
    if e.event_type:
        out.append(("keel-event-type", e.event_type.encode()))
    # the writer's (business) time: the record's own timestamp is the broker's append time
    out.append((TIME_HEADER, str(e.timestamp_ms).encode()))
    if e.sig:
        out.append((SIG_HEADER, e.sig))
    return out


def _writer_time(m: Any) -> int:
    """The writer's timestamp: its header, or the record's (CreateTime topics)."""
    for name, value in m.headers or ():
        if name == TIME_HEADER:
            return int(value)
    return int(m.timestamp)


def _recorded(m: Any) -> int:
    """The broker's append time (topics with message.timestamp.type=LogAppendTime); 0 for a
    record whose topic kept the writer's CreateTime (recorded time not known)."""
    return int(m.timestamp) if m.timestamp_type == 1 else 0


def _time_and_sig(headers: Any) -> tuple[int | None, bytes | None]:
    """The writer's time and signature record from a librdkafka message's headers."""
    if not headers:
        return None, None
    found = dict(headers)  # in C; a later duplicate would win, as no Keel writer repeats one
    writer_ms = found.get(TIME_HEADER)
    return None if writer_ms is None else int(writer_ms), found.get(SIG_HEADER)


def _sig(headers: Any) -> bytes | None:
    """The writer's signature record, from the record's headers."""
    for name, value in headers or ():
        if name == SIG_HEADER:
            return bytes(value)
    return None


def new_prefix() -> str:
    """A fresh topic prefix, for tests and throwaway runs."""
    return f"t{uuid.uuid4().hex[:10]}."


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
