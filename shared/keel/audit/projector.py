"""The projector runner: log -> audit views (ViewStore) + audit chain (log's audit topic).

Each batch writes its view updates, the seen-markers of its events and its tracking positions in
one ViewStore.apply: a crash anywhere, then a restart, resumes exactly after the last applied
batch, and an event is never applied twice (duplicates in the log are skipped by event_id).

Chain links are appended to the audit topic before the batch's views are applied; a crash in
between leaves links whose views are missing. On restart the projector adopts those links
(they continue the stored chain head) instead of writing them again.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keel.audit.chain import GENESIS, link_hash, source_of
from keel.audit.projection import Change, evolve, keys_for
from keel.audit.summary import summarize
from keel.bootstrap import to_outgoing
from keel.codec import Codec, CodecError
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.log.port import EventLog, LogRecord, TopicPartition
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.port import Put, Tracking, Update, ViewStore

HEAD = "audit:head"


@dataclass
class Progress:
    applied: int = 0
    skipped_duplicates: int = 0
    undecodable: int = 0
    after_as_of: int = 0
    adopted_links: int = 0


class Projector:
    def __init__(
        self,
        log: EventLog,
        views: ViewStore,
        codec: Codec,
        name: str = "audit",
        batch_size: int = 1000,
        as_of_ms: int | None = None,
        chain: bool = True,
        code_version: str = "projector",
    ) -> None:
        self.log, self.views, self.codec, self.name = log, views, codec, name
        self.batch_size, self.as_of_ms, self.chain = batch_size, as_of_ms, chain
        self.code_version = code_version

    def run(self, on_batch: Callable[[Progress], None] | None = None) -> Progress:
        """Fold everything up to the log's current end, batch by batch."""
        progress = Progress()
        # The chain writer has a stable identity (where the log supports one), so a killed
        # predecessor's open append is aborted before the chain is read back below.
        for_writer = getattr(self.log, "for_writer", None)
        self.writer: EventLog = (
            for_writer(f"projector-{self.name}") if for_writer and self.chain else self.log
        )
        try:
            positions = self.views.tracking(self.name)
            head = self.views.get(HEAD) or {"seq": 0, "hash": GENESIS, "next_offset": 0}
            if self.chain:
                self._adopt_links(head, progress)
            records = self.log.read(list(EVENT_TOPICS), positions or None)
            for batch in _chunks(records, self.batch_size):
                self._apply_batch(batch, positions, head, progress)
                if on_batch:
                    on_batch(progress)
        finally:
            if self.writer is not self.log:
                self.writer.close()
        return progress

    # -- one batch ---------------------------------------------------------------------------
    def _apply_batch(
        self,
        batch: list[LogRecord],
        positions: dict[TopicPartition, int],
        head: dict[str, Any],
        progress: Progress,
    ) -> None:
        events: list[tuple[LogRecord, Any]] = []
        for rec in batch:
            positions[rec.tp] = rec.offset + 1
            try:
                event = decode_event(self.codec, rec.value)
            except CodecError:
                progress.undecodable += 1  # reported by `keel audit tail`; position still moves
                continue
            if (
                self.as_of_ms is not None
                and event.envelope.occurred_at.timestamp() * 1000 > self.as_of_ms
            ):
                progress.after_as_of += 1
                continue
            events.append((rec, event))
        seen_keys = [f"seen:{e.envelope.event_id}" for _, e in events]
        found = self.views.get_many(seen_keys)
        already = {k for k, d in zip(seen_keys, found, strict=True) if d is not None}
        # Events already in the chain (links adopted after a crash) get no second link.
        chain_keys = [f"chained:{e.envelope.event_id}" for _, e in events] if self.chain else []
        found = self.views.get_many(chain_keys)
        chained = {k for k, d in zip(chain_keys, found, strict=True) if d}
        keys = sorted({k for _, e in events for k in keys_for(e)})
        docs: dict[str, dict[str, Any] | None] = dict(
            zip(keys, self.views.get_many(keys), strict=True)
        )
        index: list[Update] = []
        seen: list[Update] = []
        changed: set[str] = set()
        links: list[g.AuditRecord] = []
        for rec, event in events:
            key = f"seen:{event.envelope.event_id}"
            if key in already:
                progress.skipped_duplicates += 1
                continue
            already.add(key)
            change: Change = evolve(docs, event)
            docs.update(change.docs)
            changed.update(change.docs)
            index.extend(change.index)
            seen.append(Put(key, {}))
            progress.applied += 1
            ckey = f"chained:{event.envelope.event_id}"
            if self.chain and ckey not in chained:
                chained.add(ckey)
                links.append(self._link(rec, event, head))
                seen.append(Put(ckey, {"seq": head["seq"]}))
        # Grouped by kind (different keys, so order between groups does not matter): each
        # group is one executemany / one run of pipelined commands.
        updates: list[Update] = [*index, *seen, *(Put(k, docs[k] or {}) for k in sorted(changed))]
        if links:
            stored = self.writer.append([to_outgoing(self.codec, link) for link in links])
            head["next_offset"] = stored[-1].offset + 1
        updates.append(Put(HEAD, dict(head)))
        self.views.apply(updates, Tracking(self.name, dict(positions)))

    def _link(self, rec: LogRecord, event: Any, head: dict[str, Any]) -> g.AuditRecord:
        seq, prev = head["seq"] + 1, head["hash"]
        src = source_of(rec.topic, rec.partition, rec.offset)
        sha = hashlib.sha256(rec.value).hexdigest()
        summary = f"{event.EVENT_TYPE}: {summarize(event)}"
        h = link_hash(seq, prev, sha, event.envelope.event_id, src, summary)
        head.update(seq=seq, hash=h)
        # Deterministic link IDs: re-appending the same link after a crash is recognisable.
        eid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"keel-audit:{seq}:{h}"))
        return g.AuditRecord(
            envelope=envelope(
                "AuditRecord",
                subject=AUDIT_TOPIC,
                service="audit",
                code_version=self.code_version,
                actor="projector",
                correlation_id=event.envelope.correlation_id,
                occurred_at=event.envelope.occurred_at,
                causation_id=event.envelope.event_id,
                event_id=eid,
            ),
            seq=seq,
            prev_hash=prev,
            hash=h,
            event_id=event.envelope.event_id,
            event_type=event.EVENT_TYPE,
            source_topic=rec.topic,
            source_partition=rec.partition,
            source_offset=rec.offset,
            event_sha256=sha,
            summary=summary,
        )

    def _adopt_links(self, head: dict[str, Any], progress: Progress) -> None:
        """Links appended after the stored head by a run that crashed before its views landed
        continue the chain, so they are kept, and marked (chained:{event_id}) together with the
        new head in one apply before any batch: no later run links those events again, whatever
        batch boundaries it reads (on Kafka, partitions interleave differently each time)."""
        updates: list[Update] = []
        start = {(AUDIT_TOPIC, 0): int(head["next_offset"])}
        for rec in self.log.read([AUDIT_TOPIC], start):
            try:
                link = decode_event(self.codec, rec.value)
            except CodecError:
                continue
            if not isinstance(link, g.AuditRecord) or link.prev_hash != head["hash"]:
                continue
            head.update(seq=link.seq, hash=link.hash, next_offset=rec.offset + 1)
            updates.append(Put(f"chained:{link.event_id}", {"seq": link.seq}))
            progress.adopted_links += 1
        if updates:
            updates.append(Put(HEAD, dict(head)))
            self.views.apply(updates)


def _chunks(records: Iterator[LogRecord], n: int) -> Iterator[list[LogRecord]]:
    while batch := list(itertools.islice(records, n)):
        yield batch
