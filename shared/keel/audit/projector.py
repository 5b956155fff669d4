"""The projector runner: log -> audit views (ViewStore) + audit chain (log's audit topic).

Each batch writes its view updates, its events' IDs (the applied set) and its tracking positions
in one ViewStore.apply: a crash anywhere, then a restart, resumes exactly after the last applied
batch, and an event is never applied twice (duplicates in the log are skipped by event_id).

Chain links are appended to the audit topic before the batch's views are applied; a crash in
between leaves links whose views are missing. On restart the projector adopts those links
(they continue the stored chain head) instead of writing them again.

A batch is folded (pure: decode, evolve, build links) and then written (append links, apply
views). Overlapping the two on a writer thread was measured and dropped: the work is CPU-bound
Python on both sides, so the GIL serialised it (no gain on Kafka -> Redis) and SQLite's per-row
GIL hand-offs made the embedded fold slower (see decision 0008).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from keel.audit.chain import GENESIS
from keel.audit.links import LinkEncoder
from keel.audit.projection import evolve, keys_for
from keel.codec import Codec, CodecError
from keel.events import decode_event
from keel.events import generated as g
from keel.log.port import EventLog, LogRecord, OutgoingEvent, TopicPartition
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.port import Put, SetAdd, SetRemove, Tracking, Update, ViewStore

logger = logging.getLogger(__name__)
HEAD = "audit:head"
# Documents the fold reads are cached for the run (the projector is their only writer); past
# this many the cache starts over, so memory stays bounded on any log.
_CACHE_LIMIT = 200_000


@dataclass
class Progress:
    applied: int = 0
    skipped_duplicates: int = 0
    undecodable: int = 0
    after_as_of: int = 0
    adopted_links: int = 0


@dataclass
class _Write:
    """One batch's effects, in the order they must land."""

    links: list[OutgoingEvent]
    updates: list[Update]
    tracking: Tracking
    head: dict[str, Any]


@dataclass
class _Session:
    positions: dict[TopicPartition, int]
    head: dict[str, Any]
    chain_pending: set[str]  # event IDs whose links were adopted, views not yet landed
    progress: Progress


class Projector:
    def __init__(
        self,
        log: EventLog,
        views: ViewStore,
        codec: Codec,
        name: str = "audit",
        batch_size: int = 5000,
        as_of_ms: int | None = None,
        chain: bool = True,
        code_version: str = "projector",
    ) -> None:
        self.log, self.views, self.codec, self.name = log, views, codec, name
        self.batch_size, self.as_of_ms, self.chain = batch_size, as_of_ms, chain
        self.links = LinkEncoder(codec, code_version)
        # Event IDs applied (for duplicates), and event IDs whose links were adopted after a
        # crash but whose views have not landed yet (normally empty; see _adopt_links).
        self.applied_set, self.pending_set = f"{name}:applied", f"{name}:chained-pending"

    def run(self, on_batch: Callable[[Progress], None] | None = None) -> Progress:
        """Fold everything up to the log's current end, batch by batch."""
        with self._session() as session:
            self._catch_up(session, on_batch)
        return session.progress

    def follow(
        self,
        group: str,
        should_stop: Callable[[], bool],
        on_batch: Callable[[Progress], None] | None = None,
        poll_timeout: float = 0.5,
    ) -> Progress:
        """Run as a service: catch up, then fold new events as consumer group `group` until
        `should_stop()` says so. The views' tracking stays the authority on what was applied:
        records before it (a group offset lagging after a crash) are skipped, and the group is
        committed only after a batch's views landed, so its lag is what is left to fold."""
        with self._session() as session:
            self._catch_up(session, on_batch)
            committed = self.log.committed(group)
            behind = {tp: o for tp, o in session.positions.items() if committed.get(tp, 0) < o}
            if behind:  # start the group where the views are, not at the log's beginning
                try:
                    self.log.commit(group, behind)
                except Exception as exc:  # only a shortcut: see below
                    # e.g. a killed predecessor still holds the group until its session times
                    # out: the broker refuses an outside commit. Nothing is lost: the group
                    # then re-reads from its own offsets and the records before the views'
                    # tracking are skipped below.
                    logger.warning(
                        "could not move group %s to the views' positions: %s", group, exc
                    )
            sub = self.log.subscribe(group, list(EVENT_TOPICS))
            try:
                while not should_stop():
                    records = sub.poll(timeout=poll_timeout, max_records=self.batch_size)
                    fresh = [r for r in records if r.offset >= session.positions.get(r.tp, 0)]
                    if fresh:
                        self._step(session, fresh, on_batch)
                    if records:
                        sub.commit()
            finally:
                sub.close()
        return session.progress

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        # The chain writer has a stable identity (where the log supports one), so a killed
        # predecessor's open append is aborted before the chain is read back below; a second
        # live projector with the same name is fenced off by the broker.
        for_writer = getattr(self.log, "for_writer", None)
        self.writer: EventLog = (
            for_writer(f"projector-{self.name}") if for_writer and self.chain else self.log
        )
        self._docs: dict[str, dict[str, Any] | None] = {}
        try:
            progress = Progress()
            head = self.views.get(HEAD) or {"seq": 0, "hash": GENESIS, "next_offset": 0}
            pending = self._adopt_links(head, progress) if self.chain else set()
            self._next_offset = int(head["next_offset"])  # where the audit topic ends
            yield _Session(self.views.tracking(self.name), head, pending, progress)
        finally:
            if self.writer is not self.log:
                self.writer.close()

    def _catch_up(self, s: _Session, on_batch: Callable[[Progress], None] | None) -> None:
        records = self.log.read(list(EVENT_TOPICS), s.positions or None)
        for batch in _chunks(records, self.batch_size):
            self._step(s, batch, on_batch)

    def _step(
        self, s: _Session, batch: list[LogRecord], on_batch: Callable[[Progress], None] | None
    ) -> None:
        self._write(self._fold(batch, s.positions, s.head, s.chain_pending, s.progress))
        if len(self._docs) > _CACHE_LIMIT:
            self._docs.clear()
        if on_batch:
            on_batch(s.progress)

    # -- fold one batch: no writes -----------------------------------------------------------
    def _fold(
        self,
        batch: list[LogRecord],
        positions: dict[TopicPartition, int],
        head: dict[str, Any],
        chain_pending: set[str],
        progress: Progress,
    ) -> _Write:
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
        already = self._applied([e.envelope.event_id for _, e in events])
        docs = self._load({k for _, e in events for k in keys_for(e)})
        index: list[Update] = []
        changed: set[str] = set()
        applied: list[str] = []
        links: list[OutgoingEvent] = []
        unpended: list[str] = []
        for rec, event in events:
            eid = event.envelope.event_id
            if eid in already:
                progress.skipped_duplicates += 1
                continue
            already.add(eid)
            change = evolve(docs, event)
            docs.update(change.docs)
            changed.update(change.docs)
            index.extend(change.index)
            applied.append(eid)
            progress.applied += 1
            if not self.chain:
                continue
            if eid in chain_pending:  # its link was adopted: it is in the chain already
                chain_pending.discard(eid)
                unpended.append(eid)
            else:
                links.append(self.links.link(rec, event, head))
        # Grouped by kind (different keys, so order between groups does not matter): each
        # group is one executemany / a few multi-key commands.
        updates: list[Update] = [
            *index,
            *(Put(k, docs[k] or {}) for k in sorted(changed)),
            SetAdd(self.applied_set, tuple(applied)),
        ]
        if unpended:
            updates.append(SetRemove(self.pending_set, tuple(unpended)))
        return _Write(links, updates, Tracking(self.name, dict(positions)), dict(head))

    def _applied(self, ids: list[str]) -> set[str]:
        hits = self.views.contains(self.applied_set, ids)
        return {i for i, hit in zip(ids, hits, strict=True) if hit}

    def _load(self, keys: set[str]) -> dict[str, dict[str, Any] | None]:
        missing = sorted(keys - self._docs.keys())
        if missing:
            self._docs.update(zip(missing, self.views.get_many(missing), strict=True))
        return self._docs

    # -- write one batch: links first, then views + tracking in one apply -----------------
    def _write(self, write: _Write) -> None:
        if write.links:
            stored = self.writer.append(write.links)
            self._next_offset = stored[-1].offset + 1
        write.head["next_offset"] = self._next_offset
        self.views.apply([*write.updates, Put(HEAD, write.head)], write.tracking)

    def _adopt_links(self, head: dict[str, Any], progress: Progress) -> set[str]:
        """Links appended after the stored head by a run that crashed before its views landed
        continue the chain, so they are kept, and their events put in the pending set with the
        new head in one apply before any batch: no later run links those events again, whatever
        batch boundaries it reads (on Kafka, partitions interleave differently each time).
        Returns the whole pending set (event IDs in the chain whose views have not landed)."""
        adopted: list[str] = []
        start = {(AUDIT_TOPIC, 0): int(head["next_offset"])}
        for rec in self.log.read([AUDIT_TOPIC], start):
            try:
                link = decode_event(self.codec, rec.value)
            except CodecError:
                continue
            if not isinstance(link, g.AuditRecord) or link.prev_hash != head["hash"]:
                continue
            head.update(seq=link.seq, hash=link.hash, next_offset=rec.offset + 1)
            adopted.append(link.event_id)
            progress.adopted_links += 1
        if adopted:
            self.views.apply([SetAdd(self.pending_set, tuple(adopted)), Put(HEAD, dict(head))])
        return set(self.views.members(self.pending_set))


def _chunks(records: Iterator[LogRecord], n: int) -> Iterator[list[LogRecord]]:
    while batch := list(itertools.islice(records, n)):
        yield batch
