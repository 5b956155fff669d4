"""The projector runner: log -> audit views (ViewStore) + Merkle trees and checkpoints.

Each batch writes its view updates, its events' IDs (the applied set) and its tracking positions
in one ViewStore.apply: a crash anywhere, then a restart, resumes exactly after the last applied
batch, and an event is never applied twice (duplicates in the log are skipped by event_id).

Trust (decision 0009): every record, decodable or not, becomes a leaf of its topic-partition's
Merkle tree (RFC 9162); the trees' right edges are written in the same apply as the views and
tracking, so a crash never adds a leaf twice or loses one. An event whose signature does not
check (unsigned, altered, unknown key, identity not allowed to write the type) is not folded into
any view: it is recorded under audit:rejected with the problem, so no answer is built from it.
At the end of a run that grew the trees, a Checkpoint (signed C2SP notes of every tree's size
and root) is appended to the audit topic.

A batch is folded (pure: decode, check signatures, extend trees, evolve) and then written
(one views apply). Overlapping the two on a writer thread was measured and dropped: the work
is CPU-bound Python on both sides, so the GIL serialised it (no gain on Kafka -> Redis) and
SQLite's per-row GIL hand-offs made the embedded fold slower (see decision 0008). What does overlap:
a command's catch-up reads the next batch from the log on a second thread (keel.audit.prefetch,
decision 0034's session 15): 2-14% less wall time at 200k on a quiet machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from keel.audit import batching, foldcore, gcpause, keys, prefetch
from keel.audit import checkpoint as cp
from keel.audit import trees as tr
from keel.audit.anchors import NOTES, RESET_HINT, LocalWitness, RewriteRefused, gather
from keel.audit.lease import LeaseKeeper, wait_for_service
from keel.audit.merkle import Frontier
from keel.audit.projection import SHAPE, SHAPE_VERSION
from keel.audit.witness import Anchor, anchor_problem
from keel.bootstrap import announce_schemas, to_outgoing
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.events import generated as g
from keel.log.port import EventLog, LogRecord, TopicPartition
from keel.signing import ADOPTED, Signer, Trust
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.port import Put, SetAdd, StaleTracking, Tracking, Update, ViewStore

logger = logging.getLogger(__name__)

# Documents the fold reads are cached for the run (the projector is their only writer); past
# this many the cache starts over, so memory stays bounded on any log.
_CACHE_LIMIT = 200_000
_SEED_WINDOW = 64  # audit-topic records read for the newest checkpoint
NORMAL_BATCH = 5000  # events a batch once caught up (a live event waits for its batch)


@dataclass
class Progress:
    applied: int = 0
    skipped_duplicates: int = 0
    undecodable: int = 0
    after_as_of: int = 0
    rejected: int = 0  # signature problems: kept out of the views, listed under audit:rejected
    checkpoint: dict[str, int] | None = None  # tree sizes of the checkpoint this run published
    folded_by: str | None = None  # the projector service that folded instead (its lease)
    fold: str = "python"  # which fold core ran (foldcore.py): python or native


@dataclass
class _Session:
    positions: dict[TopicPartition, int]
    trees: dict[TopicPartition, Frontier]
    progress: Progress
    checkpointed: dict[str, int]  # tree sizes of the last checkpoint (read once per session)
    # where trees not yet in the views switch to leaf format 2 (fresh views: a rebuild)
    leaf2_from: dict[TopicPartition, int] = field(default_factory=dict)
    # What a checkpoint must extend (anchors.py), checked once per session before the first
    # checkpoint: trees grown in memory from a checked start extend it by construction.
    anchors: list[Anchor] = field(default_factory=list)
    start: dict[TopicPartition, Frontier] = field(default_factory=dict)  # trees as loaded
    watch: dict[TopicPartition, dict[int, bytes | None]] = field(default_factory=dict)
    anchored: bool = False


def recorded(rec: LogRecord, event: Any) -> int:
    """When the log stored the event; its business time where the log did not say (records
    stored before logs stamped recorded time)."""
    return rec.recorded_ms or int(event.envelope.occurred_at.timestamp() * 1000)


class Projector:
    def __init__(
        self,
        log: EventLog,
        views: ViewStore,
        codec: Codec,
        name: str = "audit",
        batch_size: int | None = None,
        as_of_ms: int | None = None,
        trees: bool = True,
        signer: Signer | None = None,
        trust: Trust | None = None,
        code_version: str = "projector",
        witness: LocalWitness | None = None,
        reset: bool = False,
        fold: str | None = None,
        prefetch_reads: bool | None = None,
    ) -> None:
        """signer: publishes checkpoints (needs the audit key); trust: which events to fold
        (default the signer's; with neither, every decodable event: unsigned mode); witness:
        the home's default local witness (written on every checkpoint, and an anchor); reset:
        sign without checking the anchors (only `keel audit reset-trust`, which records it);
        fold: which fold core (foldcore.select: python, native, auto; default $KEEL_FOLD);
        prefetch_reads: a catch-up reads its next batch on a second thread (keel.audit.prefetch;
        default $KEEL_FOLD_PREFETCH, on)."""
        self.log, self.views, self.codec, self.name = log, views, codec, name
        # batch_size: the normal batch (a live event's wait; None: NORMAL_BATCH). A command's
        # catch-up folds batching.CATCH_UP a batch while more than one normal batch waits
        # (decision 0040); a caller that sets batch_size gets that size throughout (tests of
        # batch boundaries; the rebuild, which sets 20000 itself).
        self.batch_size = NORMAL_BATCH if batch_size is None else batch_size
        self.catch_up_batch = batching.CATCH_UP if batch_size is None else batch_size
        self.as_of_ms, self.trees = as_of_ms, trees
        self.signer, self.code_version = signer, code_version
        self.witness, self.reset = witness, reset
        self.trust = trust or (signer.trust if signer is not None else Trust())
        self.applied_set = keys.applied(name)  # event IDs applied, for duplicates
        self.core = foldcore.select(codec, self.trust, fold)
        self.prefetch = prefetch.enabled() if prefetch_reads is None else prefetch_reads

    def run(
        self, on_batch: Callable[[Progress], None] | None = None, checkpoint: bool = True
    ) -> Progress:
        """Fold everything up to the log's current end, batch by batch (batching.CATCH_UP a
        batch while more than a normal batch waits: decision 0040); then publish a
        checkpoint if the trees grew (checkpoint=False: leave that to a later run).
        While a projector service holds these views' lease, only it folds them: wait for it
        to reach the log's end instead (bounded; Progress.folded_by names it)."""
        if not self.reset:  # reset-trust signs over the restored log itself, by design
            by = wait_for_service(self.log, self.views, self.name)
            if by is not None:
                return Progress(folded_by=by)
        with self._session() as session:
            self._catch_up(session, on_batch)
            if checkpoint:
                self._checkpoint(session)
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
        committed only after a batch's views landed, so its lag is what is left to fold.
        It holds the views' lease while it runs (keel.audit.lease): commands then wait for it
        rather than fold and take its writer identity."""
        lease = LeaseKeeper(self.views, self.name)
        lease.renew(force=True)  # before the catch-up: commands wait for that too

        def beat(progress: Progress) -> None:
            lease.renew()
            if on_batch:
                on_batch(progress)

        try:
            return self._follow(group, should_stop, beat, poll_timeout, lease)
        finally:
            lease.release()

    def _follow(
        self,
        group: str,
        should_stop: Callable[[], bool],
        on_batch: Callable[[Progress], None],
        poll_timeout: float,
        lease: LeaseKeeper,
    ) -> Progress:
        # larger batches while far behind, the normal size once caught up (keel.audit.batching)
        pacer = batching.Pacer(self.batch_size, batching.CATCH_UP)
        with self._session() as session:
            self._catch_up(session, on_batch, pacer)
            # Signed once caught up, as `run` does: a backlog's batches are not checkpointed
            # one by one, and with no event after it the folded backlog stayed uncovered by
            # any checkpoint until the next event arrived (`keel audit verify`: uncovered).
            self._checkpoint(session)
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
                    lease.renew()
                    records = sub.poll(timeout=poll_timeout, max_records=pacer.size())
                    fresh = [r for r in records if r.offset >= session.positions.get(r.tp, 0)]
                    if fresh:
                        # A checkpoint per batch, appended before the batch's views: it says
                        # where the trees are as soon as they move, and an append by a fenced
                        # (superseded) projector fails before it can touch the views.
                        try:
                            with gcpause.paused():  # one batch; the collector runs between
                                self._step(session, fresh, on_batch, checkpoint=True)
                        except StaleTracking:
                            # a command caught the views up meanwhile: fold what is left from
                            # where it stopped (the polled records may be past or before it)
                            self._reload(session)
                            self._catch_up(session, on_batch, pacer)
                    if records:
                        sub.commit()
                    pacer.took(len(records))
            finally:
                sub.close()
        return session.progress

    @contextmanager
    def _session(self) -> Iterator[_Session]:
        # The checkpoint writer has a stable identity (where the log supports one): a second
        # live projector with the same name is fenced off by the broker.
        # Only a projector that publishes checkpoints (it has a signer) takes that identity: a
        # command catching the views up beside the projector service must not fence it.
        # (Not a fold with the public keys only, as the audit API's replica watcher's.)
        for_writer = getattr(self.log, "for_writer", None)
        publishes = for_writer is not None and self._publishes()
        self.writer: EventLog = (
            for_writer(f"projector-{self.name}") if publishes and for_writer else self.log
        )
        self.core.forget()  # documents the fold reads, cached for the run (the core's)
        self._announced: set[str] = set()
        try:
            positions = self.views.tracking(self.name)
            shape = (self.views.get(SHAPE) or {}).get("version")
            if positions and shape != SHAPE_VERSION:
                raise KeelError(
                    f"the audit views were folded by an older Keel (shape {shape or 1}, this "
                    f"one reads shape {SHAPE_VERSION}): they lack what services now read",
                    hint="fold them again from the log: `keel audit rebuild` (nothing is lost)",
                )
            trees: dict[TopicPartition, Frontier] = {}
            if self.trees:
                stored = self.views.get(tr.TREES) or {}
                trees = {tr.parse_tp(k): Frontier.from_doc(v) for k, v in stored.items()}
                if any("leaf2_from" not in v for v in stored.values()):
                    # trees from before leaf format 2: where it starts is decided now (their
                    # size) and kept, so every later fold and checkpoint agrees on it
                    docs = {tr.tp_key(tp): t.to_doc() for tp, t in trees.items()}
                    self.views.apply([Put(tr.TREES, docs)])
            checkpointed = (self.views.get(tr.CHECKPOINTED) or {}) if self.trees else {}
            seeds = self._leaf_seeds() if self.trees and not trees else {}
            progress = Progress(fold=self.core.name)
            session = _Session(positions, trees, progress, checkpointed, seeds)
            if self._publishes():
                session.anchors = gather(self.log, self.codec, self.views, self.trust, self.witness)
                self._mark_start(session)
            yield session
        finally:
            if self.writer is not self.log:
                self.writer.close()

    def _leaf_seeds(self) -> dict[TopicPartition, int]:
        """Views folded afresh (a rebuild, verify's fold): each tree switches to leaf format 2
        where the newest checkpoint in the log says it did, so the trees come out as signed.
        Only notes the audit key signed count (the audit topic is writable too)."""
        ends = self.log.end_offsets([AUDIT_TOPIC])
        start = {tp: max(0, end - _SEED_WINDOW) for tp, end in ends.items()}
        newest: g.Checkpoint | None = None
        for rec in self.log.read([AUDIT_TOPIC], start, _SEED_WINDOW):
            try:
                event = decode_event(self.codec, rec.value)
            except CodecError:
                continue  # `verify` reports it
            if isinstance(event, g.Checkpoint) and (
                newest is None or event.envelope.occurred_at >= newest.envelope.occurred_at
            ):
                newest = event
        notes = []
        for head in newest.trees if newest is not None else ():
            try:
                note = cp.parse(head.note)
            except ValueError:
                continue
            if not self.trust.enabled or cp.check(note, self.trust) is None:
                notes.append(note)
        return tr.leaf_switches(notes)

    def _catch_up(
        self,
        s: _Session,
        on_batch: Callable[[Progress], None] | None,
        pacer: batching.Pacer | None = None,
    ) -> None:
        if pacer is None:  # a command's: larger batches while far behind, untimed (no lease)
            pacer = batching.Pacer(self.batch_size, self.catch_up_batch, timed=False)
        # bounded work up to the log's end: the cycle collector waits for it (gcpause)
        with gcpause.paused():
            for _ in range(1000):  # bounded: each retry means another writer made progress
                try:
                    records = self.log.read(list(EVENT_TOPICS), s.positions or None)
                    if pacer.varies:
                        ends = self.log.end_offsets(list(EVENT_TOPICS))
                        pacer.expect(batching.lag(ends, s.positions))
                    # Not while the pacer sizes batches by their measured time (the service's
                    # catch-up): read ahead, a batch's time would be its read's only.
                    ahead = self.prefetch and not pacer.times
                    with prefetch.batches(pacer.chunks(records), ahead) as batches:
                        for batch in batches:
                            self._step(s, batch, on_batch)
                    return
                except StaleTracking:
                    self._reload(s)  # another process folded some of it: go on from there
        raise RuntimeError("the views' tracking kept moving under this projector")

    def _reload(self, s: _Session) -> None:
        """Take the tracking, trees and checkpoint state another writer left in the views."""
        s.positions = self.views.tracking(self.name)
        if self.trees:
            stored = self.views.get(tr.TREES) or {}
            s.trees = {tr.parse_tp(k): Frontier.from_doc(v) for k, v in stored.items()}
            s.checkpointed = self.views.get(tr.CHECKPOINTED) or {}
            if s.anchors:
                self._mark_start(s)
        self.core.forget()

    def _publishes(self) -> bool:
        return bool(
            self.trees
            and self.signer is not None
            and self.trust.enabled
            and self.signer.can_sign(tr.AUDIT_IDENTITY)
        )

    def _mark_start(self, s: _Session) -> None:
        """Remember the trees as loaded, and which anchor sizes the fold must watch for."""
        s.anchored = False
        s.start = {tp: replace(t, hashes=list(t.hashes)) for tp, t in s.trees.items()}
        s.watch = {}
        for a in s.anchors:
            tp = a.note.tree
            if a.note.size > s.start.get(tp, Frontier()).size:
                s.watch.setdefault(tp, {})[a.note.size] = None

    def _step(
        self,
        s: _Session,
        batch: list[LogRecord],
        on_batch: Callable[[Progress], None] | None,
        checkpoint: bool = False,
    ) -> None:
        since = dict(s.positions)
        started, applied = time.perf_counter(), s.progress.applied
        updates, tracking = self._fold(batch, s)
        if checkpoint:
            updates += self._checkpoint_updates(s)
        self.views.apply(updates, Tracking(tracking.projector, tracking.positions, since))
        # imported on the first batch folded: a query whose views are current never loads
        # prometheus-client (~12 ms of its start-up)
        from keel import telemetry

        telemetry.PROJECTOR_BATCH.observe(time.perf_counter() - started)
        telemetry.PROJECTED.inc(s.progress.applied - applied)
        if self.core.cached() > _CACHE_LIMIT:
            self.core.forget()
        if on_batch:
            on_batch(s.progress)

    # -- fold one batch: no writes -----------------------------------------------------------
    def _fold(self, batch: list[LogRecord], s: _Session) -> tuple[list[Update], Tracking]:
        positions, progress = s.positions, s.progress
        rejected: list[Update] = []
        adopted: set[str] = set()  # unsigned events of adopted history: answers label them
        by_tree: dict[TopicPartition, list[LogRecord]] = {}
        for rec in batch:
            positions[rec.tp] = rec.offset + 1
            by_tree.setdefault(rec.tp, []).append(rec)
        if self.trees:  # each tree grows by its records in log order (trees are independent)
            for tp, recs in by_tree.items():
                tree = s.trees.get(tp)
                if tree is None:
                    s.trees[tp] = tree = Frontier(leaf2_from=s.leaf2_from.get(tp, 0))
                self.core.extend(tree, recs, s.watch.get(tp) or {})
        # (record, type, event ID, business ms or None, event or its native slot)
        decoded = self.core.decode_fold(batch)
        progress.undecodable += len(batch) - len(decoded)  # reported by `keel audit verify`
        if self.trust.enabled:  # the batch's signatures at once: whole chunks check as one
            # only the verdicts with a problem (or adopted history) are looked at one by one:
            # the rest are trusted as they are (admit changes only "unsigned")
            screened = self.core.screen([(d[0].value, d[0].sig, d[1]) for d in decoded])
            out: set[int] = set()
            for i, verdict in screened:
                d = decoded[i]
                rec = d[0]
                verdict = self.trust.admit(rec.tp, rec.offset, verdict)  # adopted history
                if verdict.problem is None:
                    if verdict.identity == ADOPTED:
                        adopted.add(d[2])
                else:
                    out.add(i)
                    progress.rejected += 1
                    rejected += tr.rejection(rec, self.core.event(d), verdict)
            if out:
                decoded = [d for i, d in enumerate(decoded) if i not in out]
        events = decoded
        if self.as_of_ms is not None:
            as_of = self.as_of_ms
            events = [d for d in decoded if self._recorded(d) <= as_of]
            progress.after_as_of += len(decoded) - len(events)
        already = self._applied([d[2] for d in events])
        apply: list[foldcore.Apply] = []
        for d in events:
            eid = d[2]
            if eid in already:
                progress.skipped_duplicates += 1
                continue
            already.add(eid)
            apply.append((d, eid in adopted))
        # every event's documents are read (duplicates' too), as the specification's cache has it
        index, puts = self.core.evolve(events, apply, self.views)
        applied = [d[2] for d, _ in apply]
        progress.applied += len(applied)
        # Grouped by kind (different keys, so order between groups does not matter): each
        # group is one executemany / a few multi-key commands.
        updates: list[Update] = [
            Put(SHAPE, {"version": SHAPE_VERSION}),
            *index,
            *puts,
            SetAdd(self.applied_set, tuple(applied)),
            *rejected,
        ]
        if self.trees:
            updates.append(Put(tr.TREES, {tr.tp_key(tp): t.to_doc() for tp, t in s.trees.items()}))
        return updates, Tracking(self.name, dict(positions))

    def _applied(self, ids: list[str]) -> set[str]:
        hits = self.views.contains(self.applied_set, ids)
        return {i for i, hit in zip(ids, hits, strict=True) if hit}

    def _recorded(self, d: foldcore.Decoded) -> int:
        """recorded() of a decoded record (its business time as the native core read it)."""
        rec, at_ms = d[0], d[3]
        if at_ms is None:
            return recorded(rec, self.core.event(d))
        return rec.recorded_ms or at_ms

    # -- checkpoints ---------------------------------------------------------------------------
    def _checkpoint(self, s: _Session) -> None:
        updates = self._checkpoint_updates(s)
        if updates:
            self.views.apply(updates)

    def _checkpoint_updates(self, s: _Session) -> list[Update]:
        """Append a signed Checkpoint when the trees grew since the last one, and return the
        view update that records it. Needs the audit key: without it the trees still grow,
        and `verify` says that no checkpoint covers the newest events."""
        if not self.trees or self.signer is None or not self.trust.enabled:
            return []
        sizes = {tr.tp_key(tp): t.size for tp, t in s.trees.items()}
        if not sizes or s.checkpointed == sizes:
            return []
        if not self.signer.can_sign(tr.AUDIT_IDENTITY):
            # e.g. an auditor's machine with the public keys only: queries still answer
            logger.info("the audit key is not available here: no checkpoint published")
            return []
        if not self.reset:
            self._check_anchors(s)
        event = tr.checkpoint_event(s.trees, self.signer, self.code_version)
        notes = {f"{t.topic}/{t.partition}": t.note for t in event.trees}
        if self.witness is not None:  # before the log: the witness is never behind it
            self.witness.hold(notes.values())
        announce_schemas(self.writer, self.codec.registry, {"Checkpoint"}, self._announced)
        self.writer.append([to_outgoing(self.codec, event)])
        s.progress.checkpoint = s.checkpointed = sizes
        return [Put(tr.CHECKPOINTED, sizes), Put(NOTES, notes)]

    def _check_anchors(self, s: _Session) -> None:
        """Raise RewriteRefused unless today's trees extend every anchor (RFC 9162
        consistency: the root at the anchor's size is the anchor's root)."""
        if s.anchored:
            return
        problems, broken = [], []
        for a in s.anchors:
            tp, m = a.note.tree, a.note.size
            tree = s.trees.get(tp) or Frontier()
            start = s.start.get(tp) or Frontier()
            root_at: bytes | None
            if m > tree.size:
                root_at = None
            elif m == tree.size:
                root_at = tree.root()
            elif m == start.size:
                root_at = start.root()
            elif m > start.size:
                root_at = s.watch.get(tp, {}).get(m)
            else:  # the views were folded past the anchor without a checkpoint: ask the log
                root_at = self._root_in_log(tp, m, start)
            problem = anchor_problem(a, tree.size, root_at)
            if problem is not None:
                problems.append(problem)
                broken.append(a)
        if problems:
            raise RewriteRefused(
                "refusing to sign a checkpoint: the log no longer extends what was signed "
                "before (" + "; ".join(problems) + ")",
                hint=RESET_HINT,
                anchors=tuple(broken),
            )
        s.anchored = True

    def _root_in_log(self, tp: TopicPartition, m: int, start: Frontier) -> bytes | None:
        """The root at size m of the tree the views started from, rebuilt from the log's first
        start.size records of the partition; None if the log's tree differs from the views'
        (then the views cannot be extended either). O(start.size): only when the views were
        folded past the last checkpoint without signing one."""
        tree, root_at = Frontier(leaf2_from=start.leaf2_from), None
        for rec in self.log.read([tp[0]]):
            if rec.partition != tp[1]:
                continue
            if tree.size >= start.size:
                break
            tree.append(tr.leaf(rec) if tree.size >= tree.leaf2_from else tr.leaf_v1(rec))
            if tree.size == m:
                root_at = tree.root()
        same = tree.size == start.size and tree.hashes == start.hashes
        return root_at if same else None
