"""KafkaEventLog: the EventLog port on Apache Kafka, assembled from the package's parts.

Writing goes through a transactional confluent-kafka producer (producer.py), scans and end
offsets through librdkafka (scan.py), group members through librdkafka (member.py), a group's
offsets from outside it through aiokafka (groups.py), and on a secured broker each event goes
in as its writer's principal (routing.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from keel.log import provision
from keel.log.kafka import schemas_topic
from keel.log.kafka.arrivals import Arrivals
from keel.log.kafka.groups import Groups
from keel.log.kafka.member import KafkaSubscription
from keel.log.kafka.producer import TransactionalProducer, unique_transactional_id
from keel.log.kafka.routing import Siblings, plan, role_principal
from keel.log.kafka.scan import Scanner
from keel.log.kafka.wire import DEFAULT_PREFIX, Names
from keel.log.port import LogRecord, OutgoingEvent, TopicPartition
from keel.secure.credentials import process_principal, secrets_for, split_address
from keel.topics import EVENT_TOPICS


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
        self.transactional_id = transactional_id or unique_transactional_id(prefix, self.principal)
        provision.check_reachable(bootstrap, self.client_config())
        if provision_topics:
            provision.ensure(bootstrap, prefix, self.secrets, self.principal)
        names = Names(prefix)
        config = self.client_config()
        self._producer = TransactionalProducer(
            bootstrap, config, names, self.transactional_id, exactly_once
        )
        self._scanner = Scanner(bootstrap, config, names)
        aio = self.secrets.aiokafka(self.principal) if self.secrets else {}
        self._groups = Groups(bootstrap, aio, names)
        self._siblings: Siblings[KafkaEventLog] = Siblings(self._sibling)
        self._closed = False

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for this handle's principal (empty for an open broker)."""
        return self.secrets.librdkafka(self.principal) if self.secrets else {}

    # -- writer identities -------------------------------------------------------------------
    def for_writer(self, role: str) -> KafkaEventLog:
        """A log handle whose producer has a stable transactional ID for `role`: when a new
        incarnation starts, the broker aborts the open transaction of the one that was killed
        at once (instead of after the timeout), so readers see past it immediately. Its
        principal is the role's (projector-NAME writes as the projector) when held."""
        handle = KafkaEventLog(
            self.bootstrap,
            self.prefix,
            provision_topics=False,
            exactly_once=self.exactly_once,
            transactional_id=f"keel-{self.prefix}{role}",
            principal=role_principal(self.secrets, role, self.principal),
        )
        handle._producer.start()  # fence a killed predecessor now, at start
        return handle

    def _sibling(self, principal: str) -> KafkaEventLog:
        return KafkaEventLog(
            self.bootstrap,
            self.prefix,
            provision_topics=False,
            exactly_once=self.exactly_once,
            principal=principal,
        )

    # -- producing -------------------------------------------------------------------------
    def append(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        """exactly_once (default): one transaction; on return every event is committed exactly
        once; on KeelError none is visible to (read_committed) consumers, so re-appending the
        batch is safe. Otherwise idempotent produce + flush: faster, but a broker crash can
        leave a re-sent batch twice (consumers then skip duplicates by event_id)."""
        if not events:
            return []
        batches = plan(self.secrets, self.principal, events)
        if batches is None:
            return self._append_own(events)
        out: list[LogRecord] = []
        for principal, batch in batches:
            handle = self if principal == self.principal else self._siblings.get(principal)
            records = handle._append_own(batch)
            self._scanner.saw_appended(records)  # a read right after must see them here too
            out += records
        return out

    def _append_own(self, events: Sequence[OutgoingEvent]) -> list[LogRecord]:
        records = self._producer.append(events)
        self._scanner.saw_appended(records)
        return records

    # -- reading ---------------------------------------------------------------------------
    def read(
        self,
        topics: Sequence[str] | None = None,
        start: Mapping[TopicPartition, int] | None = None,
        limit: int | None = None,
    ) -> Iterator[LogRecord]:
        records = self._scanner.scan(list(topics or EVENT_TOPICS), start)
        return records if limit is None else itertools.islice(records, limit)

    def end_offsets(self, topics: Sequence[str]) -> dict[TopicPartition, int]:
        return self._scanner.end_offsets(topics)

    def arrivals(self, topics: Sequence[str], start: Mapping[TopicPartition, int]) -> Arrivals:
        """A wake-up for readers that keep views current: `wait()` says whether records
        arrived on `topics` after the positions `start` (the ends a fold read to)."""
        return Arrivals(self._scanner, self.client_config(), list(topics), start)

    def topics(self) -> list[str]:
        meta = provision._admin(self.bootstrap, self.client_config()).list_topics(timeout=10).topics
        names = self._scanner.names
        return sorted(names.logical(t) for t in meta if t.startswith(self.prefix))

    # -- consumer groups ---------------------------------------------------------------------
    def subscribe(self, group: str, topics: Sequence[str]) -> KafkaSubscription:
        names = self._scanner.names
        return KafkaSubscription(self.bootstrap, self.client_config(), names, group, topics)

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        self._groups.commit(group, positions)

    def committed(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed positions on this prefix's topics."""
        return self._groups.committed(group, self.topics())

    # -- the schemas topic -------------------------------------------------------------------
    def publish_schema(self, fingerprint_hex: str, schema_json: str) -> None:
        schemas_topic.publish_schema(self, fingerprint_hex, schema_json)

    def read_schemas(self) -> dict[str, str]:
        return schemas_topic.read_schemas(self._scanner)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sibling in self._siblings.all():
            sibling.close()
        self._producer.close()
        self._scanner.close()
        self._groups.close()
