"""`keel audit verify`: everything the answers come from, checked against what cannot be forged
without a private key or a witness's copy.

- the log: every record decodes, carries a valid signature of an identity allowed to write
  its type (keel.signing);
- the trees: every checkpoint's notes are signed by an audit key, and the log still holds, at
  each tree's size, exactly the root the checkpoint states (else records were deleted,
  rewritten or reordered); witness checkpoints kept outside the log are checked the same way,
  (the root at a checkpoint's size recomputed from today's log is what an RFC 9162
  consistency proof would establish, and stronger: it needs no proof from the log's keeper);
- the artifact catalog: every entry has its (valid) ArtifactRecorded and matches its digest and
  size, every recorded artifact has an entry, every blob's bytes hash to the recorded digest;
- the views: equal to a fresh fold of the verified log.

The checks are pure functions over what the caller read; the CLI does the reading.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import foldcore, gcpause, keys, merkle
from keel.audit import trees as tr
from keel.audit.resets import line as reset_line
from keel.audit.resets import reset_doc
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.events import generated as g
from keel.keyring import diff as keyring_diff
from keel.keyring import fold as fold_keyring
from keel.log.port import LogRecord, TopicPartition
from keel.signing import ADMIN_EVENTS, ADOPTED, Trust, Verdict


@dataclass(frozen=True)
class Problem:
    area: str  # log | signature | checkpoint | catalog | views
    kind: str
    where: str
    detail: str
    todo: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class LogScan:
    """What the log holds, as read once: the trees (their sizes, right edges and roots at the
    sizes the checks asked for; every leaf when kept for proofs), and the verified records."""

    leaves: dict[TopicPartition, list[bytes]] = field(default_factory=dict)
    records: int = 0
    signed: int = 0
    # artifact ID -> (digest, size) its first valid ArtifactRecorded states (the event itself
    # is not kept: at 1M events, 500k events alive cost the cycle collector ~1 s after the scan)
    recorded: dict[str, tuple[str, int]] = field(default_factory=dict)
    # each event ID's first (tree, leaf index, record): kept with the leaves (proofs) or when
    # keys.toml adopts history, else empty
    positions: dict[str, tuple[TopicPartition, int, LogRecord]] = field(default_factory=dict)
    # verified ModelPromoted by event ID, and (position, event) of every verified ModelDeployed
    # that is promotion-kind or cites a promotion: what check_citations compares
    promotions: dict[str, g.ModelPromoted] = field(default_factory=dict)
    citing: list[tuple[str, g.ModelDeployed]] = field(default_factory=list)
    # unsigned records accepted inside an adopted prefix; the keyring topic's records (where,
    # value, signature, event), folded by check_keyring with the trail's own admin keys
    adopted: int = 0
    keyring: list[tuple[str, bytes, bytes | None, Any]] = field(default_factory=list)
    # each tree's right edge at the log's end, and its root at every watched (tree, size)
    frontiers: dict[TopicPartition, merkle.Frontier] = field(default_factory=dict)
    roots: dict[tuple[TopicPartition, int], bytes] = field(default_factory=dict)
    fold: str = "python"  # the fold core that decoded, checked and hashed (foldcore.py)

    def sizes(self) -> dict[TopicPartition, int]:
        """Records per tree, in the order the trees first appear in the log."""
        if self.frontiers:
            return {tp: f.size for tp, f in self.frontiers.items()}
        return {tp: len(leaves) for tp, leaves in self.leaves.items()}

    def unanswered(
        self, wanted: Iterable[tuple[TopicPartition, int]]
    ) -> set[tuple[TopicPartition, int]]:
        """The (tree, size) pairs whose root this scan cannot give: neither watched nor
        computable from kept leaves (fill_roots reads them)."""
        sizes = self.sizes()
        return {
            (tp, n)
            for tp, n in wanted
            if 0 < n < sizes.get(tp, 0)
            and (tp, n) not in self.roots
            and len(self.leaves.get(tp, ())) != sizes[tp]
        }


def watch_sizes(notes: Iterable[tuple[str, str]], trust: Trust) -> set[tuple[TopicPartition, int]]:
    """The (tree, size) pairs whose roots verify compares: every parseable checkpoint note's and
    every adopted prefix keys.toml names (the trail's own adoptions, when they differ, are read
    again by fill_roots)."""
    out = {(tp, a[0]) for tp, a in trust.adopted.items()}
    for _, text in notes:
        try:
            note = cp.parse(text)
        except ValueError:
            continue  # check_checkpoints reports it
        out.add((note.tree, note.size))
    return out


def fill_roots(
    records: Iterable[LogRecord],
    scan: LogScan,
    wanted: Iterable[tuple[TopicPartition, int]],
    leaf2_from: Mapping[TopicPartition, int] | None = None,
) -> None:
    """Add the roots at `wanted` (tree, size) pairs to `scan` from a second read of the log (in
    Python: only sizes no checkpoint or keys.toml named, e.g. an adoption keys.toml lacks)."""
    switches = leaf2_from or {}
    by_tree: dict[TopicPartition, set[int]] = {}
    for tp, n in wanted:
        by_tree.setdefault(tp, set()).add(n)
    trees = {tp: merkle.Frontier() for tp in by_tree}
    for rec in records:
        tree = trees.get(rec.tp)
        if tree is None or tree.size >= max(by_tree[rec.tp]):
            continue
        tree.append(tr.leaf_at(rec, tree.size, switches.get(rec.tp, 0)))
        if tree.size in by_tree[rec.tp]:
            scan.roots[(rec.tp, tree.size)] = tree.root()


def leaf_rule(notes: Iterable[tuple[str, str]], trust: Trust) -> dict[TopicPartition, int]:
    """Where each tree's leaf format 2 starts, from the checkpoint notes (source, text) whose
    audit signature checks (decision 0021): what the scan must hash to meet their roots."""
    valid = []
    for _, text in notes:
        try:
            note = cp.parse(text)
        except ValueError:
            continue  # check_checkpoints reports it
        if not trust.enabled or cp.check(note, trust) is None:
            valid.append(note)
    return tr.leaf_switches(valid)


def locate(
    records: Iterable[LogRecord],
    event_id: str,
    codec: Codec,
    leaf2_from: Mapping[TopicPartition, int] | None = None,
) -> tuple[TopicPartition, int, LogRecord, list[bytes]] | None:
    """Where an event sits (its tree, leaf index and record) and the leaves of its tree: what
    an inclusion proof needs. Only records holding the ID's bytes are decoded (an Avro string is
    stored as its UTF-8 bytes), so it costs a read and a hash per record, not a decode (12 s
    at 1M events on Kafka, where verify's scan takes 51 s). The first record of the ID counts,
    as in the views. leaf2_from: where each tree's leaf format 2 starts (leaf_rule)."""
    needle = event_id.encode()
    switches = leaf2_from or {}
    leaves: dict[TopicPartition, list[bytes]] = {}
    found: tuple[TopicPartition, int, LogRecord] | None = None
    for rec in records:
        tree = leaves.get(rec.tp)
        if tree is None:
            tree = leaves[rec.tp] = []
        tree.append(tr.leaf_at(rec, len(tree), switches.get(rec.tp, 0)))
        if found is None and needle in rec.value:
            try:
                event = decode_event(codec, rec.value)
            except CodecError:
                continue
            if event.envelope.event_id == event_id:
                found = (rec.tp, len(tree) - 1, rec)
    if found is None:
        return None
    return (*found, leaves[found[0]])


_ADMIN = frozenset(ADMIN_EVENTS)
# event types the other checks compare, kept when verified: the rest only count
_KEPT = frozenset(
    (g.ArtifactRecorded.EVENT_TYPE, g.ModelPromoted.EVENT_TYPE, g.ModelDeployed.EVENT_TYPE)
)
_ARTIFACT = g.ArtifactRecorded.EVENT_TYPE
_DEPLOYED = g.ModelDeployed.EVENT_TYPE


def scan_log(
    records: Iterable[LogRecord],
    codec: Codec,
    trust: Trust,
    problems: list[Problem],
    keep: Callable[[Any], None] | None = None,
    leaf2_from: Mapping[TopicPartition, int] | None = None,
    *,
    watch: Iterable[tuple[TopicPartition, int]] = (),
    fold: str | None = None,
    keep_leaves: bool | None = None,
) -> LogScan:
    """Trees, positions and signature checks of every record; `keep` sees each event that
    passed them (what a report lists from the log itself); leaf2_from: where each tree's leaf
    format 2 starts (leaf_rule; default: every leaf in format 2); watch: the (tree, size) pairs
    whose roots the checks compare (watch_sizes); fold: the core that decodes, checks
    signatures and hashes (foldcore.select: python, native or auto, default $KEEL_FOLD): the
    native one finds the same problems in the same words; keep_leaves: keep every leaf hash,
    which inclusion proofs need (default: when `keep` is given, as for a review pack)."""
    # The scan allocates millions of objects and keeps many; the cycle collector's passes over
    # that heap cost more than all its other work (keel.audit.gcpause).
    with gcpause.paused():
        return _scan(records, codec, trust, problems, keep, leaf2_from, watch, fold, keep_leaves)


def _scan(
    records: Iterable[LogRecord],
    codec: Codec,
    trust: Trust,
    problems: list[Problem],
    keep: Callable[[Any], None] | None,
    leaf2_from: Mapping[TopicPartition, int] | None,
    watch: Iterable[tuple[TopicPartition, int]],
    fold: str | None,
    keep_leaves: bool | None,
) -> LogScan:
    core = foldcore.select(codec, trust, fold)
    out = LogScan(fold=core.name)
    kept = keep is not None if keep_leaves is None else keep_leaves
    # Each event ID's first position is what proofs read (with kept leaves) and what tells
    # adopted history (keys.toml adopts a prefix: _note); else it is not kept, since a tuple
    # holding a live record per event cost ~2 us an event at 1M (the dict, the records kept
    # alive and the cycle collector's pass over them after the scan; decision 0039).
    track = kept or bool(trust.adopted)
    switches = leaf2_from or {}
    watched: dict[TopicPartition, set[int]] = {}
    for tp, n in watch:
        watched.setdefault(tp, set()).add(n)
    frontiers = out.frontiers
    it = iter(records)
    while batch := list(itertools.islice(it, 5000)):
        out.records += len(batch)
        # the batch's work goes to the core in bulk (decode, then trees and signatures per
        # batch); only what each record needs on its own stays in this loop
        good = core.decode(batch)  # in order, the undecodable left out
        if track or len(good) != len(batch):
            groups = _positions(out, batch, good, switches, track, codec, problems)
        else:
            # the common case: each record only goes to its tree's group, in C-level steps
            # (an attrgetter and a defaultdict), no Python statement a record
            groups = defaultdict(list)
            for tp, rec in zip(map(_TP, batch), batch, strict=True):
                groups[tp].append(rec)
            for tp in groups:  # in the order the trees first appear in the log, as sizes()
                if tp not in frontiers:
                    frontiers[tp] = merkle.Frontier(leaf2_from=switches.get(tp, 0))
        for tp, group in groups.items():
            tree = frontiers[tp]
            sizes = watched.get(tp)
            end = tree.size + len(group)
            want: dict[int, Any] = {n: None for n in sizes if tree.size < n <= end} if sizes else {}
            if kept:
                leaves = out.leaves.setdefault(tp, [])
                leaves += [
                    tr.leaf_at(r, tree.size + i, tree.leaf2_from) for i, r in enumerate(group)
                ]
            core.extend(tree, group, want)
            out.roots.update(((tp, n), root) for n, root in want.items())
        _check(out, core, trust, good, problems, keep)
    if not trust.enabled:
        problems.append(
            Problem(
                "signature",
                "no-keys",
                "keys.toml",
                f"the project lists no keys: none of the {out.records} events can be authenticated",
                "create keys with `keel keys create IDENTITY` (see README)",
            )
        )
    return out


_TP = operator.attrgetter("topic", "partition")


def _positions(
    out: LogScan,
    batch: list[LogRecord],
    good: list[tuple[LogRecord, Any]],
    switches: Mapping[TopicPartition, int],
    track: bool,
    codec: Codec,
    problems: list[Problem],
) -> dict[TopicPartition, list[LogRecord]]:
    """The batch's records by tree (in order, a tree's frontier made where it first appears),
    each undecodable one reported and, where `track`, each event ID's first position kept."""
    frontiers, positions = out.frontiers, out.positions
    groups: dict[TopicPartition, list[LogRecord]] = {}
    base: dict[TopicPartition, int] = {}
    # (record, event or None), every record of the batch: None where it did not decode
    pairs: Iterable[tuple[LogRecord, Any]] = (
        good if len(good) == len(batch) else _with_undecoded(batch, good)
    )
    for rec, event in pairs:
        tp = (rec.topic, rec.partition)
        group = groups.get(tp)
        if group is None:
            group = groups[tp] = []
            tree = frontiers.get(tp)
            if tree is None:
                tree = frontiers[tp] = merkle.Frontier(leaf2_from=switches.get(tp, 0))
            base[tp] = tree.size
        group.append(rec)
        if event is None:
            problems.append(_undecodable(codec, rec))
            continue
        if track:
            positions.setdefault(event.envelope.event_id, (tp, base[tp] + len(group) - 1, rec))
    return groups


def _check(
    out: LogScan,
    core: Any,
    trust: Trust,
    good: list[tuple[LogRecord, Any]],
    problems: list[Problem],
    keep: Callable[[Any], None] | None,
) -> None:
    """The batch's signatures at once (whole chunks check as one: same verdicts), then each
    event: the common case (signed by an identity allowed to write it) inline, the rest by
    _note, in log order."""
    kinds = [e.EVENT_TYPE for _, e in good]
    items = [(r.value, r.sig, k) for (r, _), k in zip(good, kinds, strict=True)]
    if not trust.enabled or not _ADMIN.isdisjoint(kinds):
        # unsigned mode, or keyring events (rare): every verdict built and looked at
        verdicts: list[Verdict | None] = (
            list(core.check_many(items)) if trust.enabled else [None] * len(good)
        )
        for (rec, event), verdict, kind in zip(good, verdicts, kinds, strict=True):
            if verdict is None or verdict.problem is not None or kind in _ADMIN:
                _note(out, trust, rec, event, verdict, problems, keep)
            else:
                _signed(out, rec, event, kind, keep)
        return
    # only the verdicts with a problem (or adopted history) are built and looked at
    odd = {i: v for i, v in core.screen(items) if v.problem is not None}
    if odd:
        for i, ((rec, event), kind) in enumerate(zip(good, kinds, strict=True)):
            if i in odd:
                _note(out, trust, rec, event, odd[i], problems, keep)
            else:
                _signed(out, rec, event, kind, keep)
        return
    out.signed += len(good)
    recorded = out.recorded
    for (rec, event), kind in zip(good, kinds, strict=True):
        # the most common kept types inline
        if kind == _ARTIFACT:
            if event.artifact_id not in recorded:
                recorded[event.artifact_id] = (event.digest, event.size)
        elif kind == _DEPLOYED:
            if event.kind == "promotion" or event.promotion_event_id:
                out.citing.append((tr.position(rec), event))
        elif kind in _KEPT:
            _kept(out, rec, event)
        if keep is not None:
            keep(event)


def _signed(
    out: LogScan, rec: LogRecord, event: Any, kind: str, keep: Callable[[Any], None] | None
) -> None:
    """A record signed by an identity allowed to write its type: counted, kept if compared."""
    out.signed += 1
    if kind in _KEPT:
        _kept(out, rec, event)
    if keep is not None:
        keep(event)


def _with_undecoded(
    batch: list[LogRecord], decoded: list[tuple[LogRecord, Any]]
) -> Iterator[tuple[LogRecord, Any]]:
    """Every record of `batch` with its event from `decoded` (in order), None where none."""
    events = iter(decoded)
    pending = next(events, None)
    for rec in batch:
        if pending is not None and pending[0] is rec:
            yield pending
            pending = next(events, None)
        else:
            yield rec, None


def _undecodable(codec: Codec, rec: LogRecord) -> Problem:
    """The problem of a record the core left out: the codec words what is wrong with it."""
    try:
        decode_event(codec, rec.value)
    except CodecError as exc:
        return Problem(
            "log",
            "undecodable",
            tr.position(rec),
            str(exc),
            "find who wrote it (no Keel writer writes undecodable bytes)",
        )
    raise KeelError(
        f"the fold core left out {tr.position(rec)}, which the codec decodes",
        hint="a bug in the native fold: run `KEEL_FOLD=python keel audit verify` and report it",
    )


def _note(
    out: LogScan,
    trust: Trust,
    rec: LogRecord,
    event: Any,
    verdict: Verdict | None,
    problems: list[Problem],
    keep: Callable[[Any], None] | None,
) -> None:
    """One event the common case does not cover: a keyring event, one whose signature did not
    check (or adopted history), or any in unsigned mode."""
    where = tr.position(rec)
    if event.EVENT_TYPE in ADMIN_EVENTS:
        out.keyring.append((where, rec.value, rec.sig, event))
    admitted = trust.admit(rec.tp, rec.offset, verdict) if verdict else None
    if admitted and admitted.identity == ADOPTED:
        # adopted history: below keys.toml's end offset and among the leaves the admin
        # adopted (an end moved in keys.toml admits nothing more); positions are tracked
        # whenever keys.toml adopts a prefix
        first = out.positions[event.envelope.event_id]
        if first[2] is rec and first[1] < trust.adopted.get(rec.tp, (0, "", 0))[0]:
            verdict = admitted
            out.adopted += 1
    if verdict is not None and verdict.problem is not None:
        env = event.envelope
        problems.append(
            Problem(
                "signature",
                "unsigned" if verdict.problem == "unsigned" else "bad-signature",
                where,
                f"{event.EVENT_TYPE} {env.event_id} (actor {env.actor!r}, producer "
                f"{env.producer.service!r}): {verdict.problem}",
                "treat it as forged: it is kept out of every answer; find how it was written",
            )
        )
        return
    if verdict is not None:  # signed and allowed (None: unsigned mode, not checked)
        out.signed += 1
    _kept(out, rec, event)
    if keep is not None:
        keep(event)


def _kept(out: LogScan, rec: LogRecord, event: Any) -> None:
    """A verified event the other checks compare: artifacts, promotions and their citations."""
    if isinstance(event, g.ArtifactRecorded):
        out.recorded.setdefault(event.artifact_id, (event.digest, event.size))
    elif isinstance(event, g.ModelPromoted):
        out.promotions.setdefault(event.envelope.event_id, event)
    elif isinstance(event, g.ModelDeployed) and (
        event.kind == "promotion" or event.promotion_event_id
    ):
        out.citing.append((tr.position(rec), event))


def check_checkpoints(
    notes: Iterable[tuple[str, str]],
    scan: LogScan,
    trust: Trust,
    problems: list[Problem],
) -> dict[str, Any]:
    """notes: (where it came from, note text). Returns a summary (latest sizes per tree)."""
    latest: dict[TopicPartition, int] = {}
    checked = 0
    parsed: list[tuple[str, cp.Note | ValueError]] = []
    for source, text in notes:
        try:
            parsed.append((source, cp.parse(text)))
        except ValueError as exc:
            parsed.append((source, exc))
    roots = _roots_at(scan, {(n.tree, n.size) for _, n in parsed if isinstance(n, cp.Note)})
    sizes = scan.sizes()
    for source, note in parsed:
        if isinstance(note, ValueError):
            problems.append(
                Problem(
                    "checkpoint",
                    "malformed",
                    source,
                    str(note),
                    "restore the checkpoint from a witness's copy",
                )
            )
            continue
        bad = cp.check(note, trust)
        if bad is not None:
            problems.append(
                Problem(
                    "checkpoint",
                    "bad-signature",
                    source,
                    f"{note.origin} size {note.size}: {bad}",
                    "a checkpoint not signed by the audit key proves nothing; "
                    "check keys.toml and where the note came from",
                )
            )
            continue
        checked += 1
        tp = note.tree
        have = sizes.get(tp, 0)
        if have < note.size:
            problems.append(
                Problem(
                    "checkpoint",
                    "truncated",
                    f"{tr.tp_key(tp)}",
                    f"{source} ({note.time}) covers {note.size} records of "
                    f"{tr.tp_key(tp)}; the log now holds {have}: records "
                    "were deleted",
                    "restore the log from a backup or replica; "
                    "the deleted records are gone from every answer",
                )
            )
            continue
        if roots[(tp, note.size)] != note.root:
            problems.append(
                Problem(
                    "checkpoint",
                    "rewritten",
                    f"{tr.tp_key(tp)}",
                    f"the first {note.size} records of {tr.tp_key(tp)} no longer "
                    f"hash to the root {source} ({note.time}) states: records "
                    "were altered, inserted or reordered",
                    "restore the log from a backup or replica",
                )
            )
            continue
        latest[tp] = max(latest.get(tp, 0), note.size)
    uncovered = {
        tr.tp_key(tp): n - latest.get(tp, 0) for tp, n in sizes.items() if n > latest.get(tp, 0)
    }
    if scan.records and not latest:
        problems.append(
            Problem(
                "checkpoint",
                "none",
                "audit topic",
                "no valid checkpoint covers the log, so deletions and rewrites cannot be detected",
                "run `keel audit project` with the audit "
                "key (KEEL_KEYS_DIR), and keep copies with "
                "`keel audit checkpoint --to PATH`",
            )
        )
    return {
        "checked": checked,
        "latest": {tr.tp_key(tp): n for tp, n in sorted(latest.items())},
        "uncovered": uncovered,
    }


def check_keyring(
    scan: LogScan, notes: Iterable[tuple[str, str]], trust: Trust, problems: list[Problem]
) -> dict[str, Any]:
    """keys.toml against the keyring the trail records (decision 0022): every keyring event
    signed by the trail's admin, keys.toml equal to their fold (key by key), adopted prefixes
    still hashing to the roots the admin signed, and every checkpoint's `keyring` line naming
    a keyring the trail passed through. Returns a summary."""
    folded = fold_keyring(scan.keyring)
    for where, why in folded.refused:
        problems.append(
            Problem(
                "keyring",
                "forged",
                where,
                why,
                "treat it as forged: only the admin key (KEEL_ADMIN_DIR) writes the keyring",
            )
        )
    if trust.enabled and not folded.ring.keys:
        problems.append(
            Problem(
                "keyring",
                "unrecorded",
                "keys.toml",
                f"keys.toml lists {len(trust.keys)} keys but the trail records no keyring: "
                "anyone who can write keys.toml can add a key",
                "record it, signed by the admin key: `keel keys record`",
            )
        )
    elif trust.enabled:
        adopted = {tp: a[:2] for tp, a in trust.adopted.items()}
        for sentence in keyring_diff(folded.ring, trust.keys, adopted):
            problems.append(
                Problem(
                    "keyring",
                    "mismatch",
                    "keys.toml",
                    sentence,
                    "restore keys.toml as the trail has it (`keel keys list` shows both), or "
                    "record a real change with `keel keys create/retire` (the admin signs it)",
                )
            )
    roots = _roots_at(scan, adopted_sizes(scan))
    for tp, (n, root) in sorted(folded.ring.adopted.items()):
        if (got := roots[(tp, n)]) is None or got.hex() != root:
            problems.append(
                Problem(
                    "keyring",
                    "adopted-rewritten",
                    tr.tp_key(tp),
                    f"the first {n} records of {tr.tp_key(tp)} no longer hash to the root the "
                    "admin adopted: the unsigned history was altered after its adoption",
                    "restore the log from a backup",
                )
            )
    unknown = set()
    for source, text in notes:
        try:
            note = cp.parse(text)
        except ValueError:
            continue  # check_checkpoints reports it
        stray = note.keyring is not None and note.keyring not in folded.states
        if stray and note.keyring not in unknown and cp.check(note, trust) is None:
            unknown.add(note.keyring)
            problems.append(
                Problem(
                    "keyring",
                    "uncommitted",
                    source,
                    f"{note.origin} size {note.size} was signed over keyring "
                    f"{str(note.keyring)[:16]}, which the trail never recorded: keys.toml "
                    "differed from the trail when it was signed",
                    "compare keys.toml with the trail: `keel keys list`",
                )
            )
    # deliberate restores the trail's admin declared (`keel audit reset-trust`): reported, not
    # problems; a forged one is among `folded.refused` above
    forged = {where for where, _ in folded.refused}
    resets = [
        reset_doc(e, where=where)
        for where, _, _, e in scan.keyring
        if isinstance(e, g.TrustReset) and where not in forged
    ]
    return {
        "trust_resets": [{**r, "line": reset_line(r)} for r in resets],
        "digest": folded.ring.digest() if folded.ring.keys else None,
        "keys": len(folded.ring.keys),
        "adopted_records": scan.adopted,
        "adopted_trees": {tr.tp_key(tp): n for tp, (n, _) in sorted(folded.ring.adopted.items())},
        "adoption_reasons": list(folded.ring.adopted_by),
    }


def adopted_sizes(scan: LogScan) -> set[tuple[TopicPartition, int]]:
    """The (tree, size) of every prefix the trail's keyring adopted: roots check_keyring needs."""
    return {(tp, n) for tp, (n, _) in fold_keyring(scan.keyring).ring.adopted.items()}


def _roots_at(
    scan: LogScan, wanted: set[tuple[TopicPartition, int]]
) -> dict[tuple[TopicPartition, int], bytes | None]:
    """The tree root at every (tree, size) asked for: watched during the scan, the tree's
    whole size, or from kept leaves in one pass over each tree (a log with many checkpoints
    costs O(leaves + checkpoints x log leaves), not a rehash per checkpoint); None where the
    tree is smaller than the size."""
    out: dict[tuple[TopicPartition, int], bytes | None] = {}
    sizes = scan.sizes()
    by_tree: dict[TopicPartition, list[int]] = {}
    for tp, size in wanted:
        have = sizes.get(tp, 0)
        if size > have:
            out[(tp, size)] = None
        elif (tp, size) in scan.roots:
            out[(tp, size)] = scan.roots[(tp, size)]
        elif size == 0:
            out[(tp, size)] = merkle.EMPTY_ROOT
        elif size == have and tp in scan.frontiers:
            out[(tp, size)] = scan.frontiers[tp].root()
        elif len(scan.leaves.get(tp, ())) == have:
            by_tree.setdefault(tp, []).append(size)
        else:
            raise KeelError(
                f"verify has no root of {tr.tp_key(tp)} at size {size}",
                hint="a bug in verify: the scan watches every checkpoint's size; sizes found "
                "later need fill_roots before the checks",
            )
    for tp, tree_sizes in by_tree.items():
        have_leaves = scan.leaves[tp]
        frontier = merkle.Frontier()
        for size in sorted(set(tree_sizes)):
            frontier.extend(have_leaves[frontier.size : size])
            out[(tp, size)] = frontier.root()
    return out


def check_catalog(
    catalog: Mapping[str, tuple[str, int]],
    blob_digests: Mapping[str, str | None],
    scan: LogScan,
    problems: list[Problem],
) -> None:
    """catalog: artifact ID -> (digest, size) as the store's catalog says; blob_digests:
    artifact ID -> sha256 of the bytes on disk (None when the file is gone)."""
    for aid, (digest, size) in sorted(catalog.items()):
        stated = scan.recorded.get(aid)  # (digest, size)
        if stated is None:
            problems.append(
                Problem(
                    "catalog",
                    "unrecorded",
                    aid,
                    "the catalog lists an artifact that no valid ArtifactRecorded announces",
                    "treat the entry as forged; remove it or re-record it from its producer",
                )
            )
            continue
        if (digest, size) != stated:
            problems.append(
                Problem(
                    "catalog",
                    "digest-mismatch",
                    aid,
                    f"catalog says {digest[:16]}/{size} B, the signed record "
                    f"says {stated[0][:16]}/{stated[1]} B",
                    "restore the catalog entry and the blob from a backup",
                )
            )
        actual = blob_digests.get(aid)
        if actual is None:
            problems.append(
                Problem(
                    "catalog",
                    "missing-bytes",
                    aid,
                    "the blob is gone",
                    "restore it from a backup or re-run its producer",
                )
            )
        elif actual != stated[0]:
            problems.append(
                Problem(
                    "catalog",
                    "bytes-mismatch",
                    aid,
                    f"the bytes hash to {actual[:16]}, the signed record says {stated[0][:16]}",
                    "restore the blob from a backup; deploy and serve refuse it meanwhile",
                )
            )
    for aid in sorted(set(scan.recorded) - set(catalog)):
        problems.append(
            Problem(
                "catalog",
                "uncatalogued",
                aid,
                "recorded in the log but absent from the catalog",
                "restore the artifact store from a backup",
            )
        )


def check_views(
    live: Mapping[str, Any], fresh: Mapping[str, Any], problems: list[Problem], limit: int = 20
) -> int:
    """Compare two ViewStore snapshots (docs, indexes, sets); returns how many keys differ."""
    differing = 0
    for part in ("docs", "indexes", "sets"):
        a, b = live.get(part, {}), fresh.get(part, {})
        for key in sorted(set(a) | set(b)):
            # what the checkpoints record and who folds (a service's lease) are no fold's
            if key in (tr.CHECKPOINTED, keys.NOTES) or keys.is_projector_lease(key):
                continue
            if a.get(key) == b.get(key):
                continue
            differing += 1
            if differing <= limit:
                what = "missing" if key not in a else "extra" if key not in b else "altered"
                problems.append(
                    Problem(
                        "views",
                        what,
                        f"{part}:{key}",
                        f"{what} in the views, compared with a fresh fold of the verified log",
                        "rebuild the views: `keel audit rebuild`",
                    )
                )
    if differing > limit:
        problems.append(
            Problem(
                "views",
                "more",
                "views",
                f"{differing - limit} more keys differ",
                "rebuild the views: `keel audit rebuild`",
            )
        )
    return differing


def file_digest(path: Any) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except FileNotFoundError:
        return None
