"""View snapshots: the audit views at log position P in one SQLite file, so a fresh replica (the
audit API on a new machine or pod) starts from the snapshot and folds only the tail, instead of
folding the whole log (108-126 s at 1M events).

A snapshot is two files in a directory per log (`snapshot_dir`):

    views-<events>-<ns>.db     the views (an SQLite ViewStore file)
    views-<events>-<ns>.note   its manifest, a signed note (C2SP shape, as checkpoints):

        keel-views-snapshot/1
        views sha256 <hex of the .db file's bytes> <byte count>
        position <topic>/<partition> <next offset>       the views' tracking, one line each
        tree <topic>/<partition> <size> <base64 root>    the trees in the views, one line each
        time <ISO-8601 UTC>
        keyring <SHA-256 of the keyring the signer held>

        - keel-audit-<key id> <signature>

Why this is sound (decisions 0009, 0021, 0022): the manifest is signed by the audit key, the key
that signs the checkpoints and the one a projector holds: it can already write any view, so its
signature over the file's digest adds no new trust; without it (the file or the note altered, a
note signed by another key) the snapshot is refused. And the views are tied to the signed chain:
their trees must have exactly the sizes and roots of the checkpoint notes they hold (each note
checked against keys.toml), i.e. the snapshot stands at a signed checkpoint, and the tail fold
extends those very trees, so a snapshot of another log, or of a rewritten one, yields trees that
`keel audit verify` and the next checkpoint's anchor check refuse. The first line names no tree
(`keel/<topic>/<partition>`), so a manifest can never pass for a checkpoint or the reverse.

`problems` decides (pure); `write` and `restore` do the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import current, keys
from keel.audit import trees as tr
from keel.audit.anchors import NOTES
from keel.audit.merkle import Frontier
from keel.errors import KeelError
from keel.log.port import TopicPartition
from keel.signing import Signer, Trust
from keel.views.port import IndexAdd, Put, SetAdd, Tracking, ViewStore
from keel.views.sqlite import SqliteViewStore

logger = logging.getLogger(__name__)
ORIGIN = "keel-views-snapshot/1"
PROJECTOR = "audit"  # the views' tracking name the snapshot carries
_CHUNK = 1 << 20


class SnapshotRefused(KeelError):
    """A snapshot that does not verify: never loaded (the reader folds the log instead)."""


def bus_key(bus_url: str) -> str:
    """One directory (and one API replica) per log: a home pointed at another cluster or
    prefix gets other files."""
    return hashlib.sha256(bus_url.encode()).hexdigest()[:16]


def snapshot_dir(settings: Any) -> Path:
    return Path(settings.home) / "snapshots" / f"audit-views-{bus_key(settings.bus_url())}"


@dataclass(frozen=True)
class Manifest:
    digest: str
    nbytes: int
    positions: dict[TopicPartition, int]
    trees: dict[TopicPartition, tuple[int, bytes]]  # size, root
    time: str
    note: cp.Note  # the signed text and its signatures (checked with cp.check)

    @property
    def events(self) -> int:
        return sum(self.positions.values())


@dataclass(frozen=True)
class State:
    """What the views in a snapshot file say about themselves."""

    positions: dict[TopicPartition, int]
    trees: dict[TopicPartition, tuple[int, bytes]]
    notes: dict[str, str]  # the checkpoint notes the views hold ("topic/partition" -> note)
    shape: int | None = None  # the views' shape (projection.SHAPE_VERSION when folded)


def manifest_text(
    digest: str,
    nbytes: int,
    positions: dict[TopicPartition, int],
    trees: dict[TopicPartition, tuple[int, bytes]],
    at: datetime,
    keyring: str,
) -> str:
    lines = [ORIGIN, f"views sha256 {digest} {nbytes}"]
    lines += [f"position {tr.tp_key(tp)} {o}" for tp, o in sorted(positions.items())]
    lines += [
        f"tree {tr.tp_key(tp)} {size} {base64.b64encode(root).decode()}"
        for tp, (size, root) in sorted(trees.items())
    ]
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines += [f"time {stamp}", f"keyring {keyring}"]
    return "\n".join(lines) + "\n"


def parse_manifest(note: str) -> Manifest:
    """Raises ValueError naming what is wrong."""
    text, sep, sigs = note.partition("\n\n")
    lines = text.split("\n")
    if not sep or lines[0] != ORIGIN:
        raise ValueError(f"not a views snapshot manifest (its first line is not {ORIGIN!r})")
    digest, nbytes, stamp = "", -1, ""
    positions: dict[TopicPartition, int] = {}
    trees: dict[TopicPartition, tuple[int, bytes]] = {}
    try:
        for line in lines[1:]:
            word, _, rest = line.partition(" ")
            parts = rest.split(" ")
            if word == "views":
                digest, nbytes = parts[1], int(parts[2])
            elif word == "position":
                positions[tr.parse_tp(parts[0])] = int(parts[1])
            elif word == "tree":
                root = base64.b64decode(parts[2], validate=True)
                trees[tr.parse_tp(parts[0])] = (int(parts[1]), root)
            elif word == "time":
                stamp = rest
        signatures = []
        for line in sigs.strip("\n").split("\n"):
            dash, name, blob = line.split(" ")
            if dash != "\u2014":
                raise ValueError(f"bad signature line {line!r}")
            signatures.append((name, base64.b64decode(blob)))
    except (ValueError, IndexError) as exc:
        raise ValueError(f"unreadable manifest line ({exc})") from exc
    if not digest:
        raise ValueError("the manifest names no views digest")
    signed = cp.Note(ORIGIN, 0, b"", stamp, text + "\n", tuple(signatures))
    return Manifest(digest, nbytes, positions, trees, stamp, signed)


def problems(
    manifest: Manifest, trust: Trust, digest: str, nbytes: int, state: State | None
) -> list[str]:
    """Why a snapshot must not be loaded (empty: it verifies). `digest`/`nbytes`: of the file as
    read; `state`: what its views say (None when only the signature and digest are checked)."""
    if not trust.enabled:
        return ["the trail has no keys: a snapshot cannot be verified without the audit key"]
    out = []
    if (bad := cp.check(manifest.note, trust)) is not None:
        out.append(f"its manifest is {bad}")
    if (digest, nbytes) != (manifest.digest, manifest.nbytes):
        out.append(
            f"the views file was altered: sha256 {digest[:16]}... ({nbytes} bytes), the signed "
            f"manifest says {manifest.digest[:16]}... ({manifest.nbytes} bytes)"
        )
    if out or state is None:
        return out
    if state.shape != current.SHAPE_VERSION:
        # an older Keel's views (e.g. recorded before an upgrade): the projector would refuse
        # to fold on from them, so the reader folds the log instead (decision 0035)
        out.append(
            f"its views are of shape {state.shape or 1}, this Keel folds shape "
            f"{current.SHAPE_VERSION}"
        )
    if state.positions != manifest.positions:
        out.append("the views' tracking positions differ from the manifest's")
    if state.trees != manifest.trees:
        out.append("the views' Merkle trees differ from the manifest's")
    for tp, (size, root) in sorted(state.trees.items()):
        text = state.notes.get(tr.tp_key(tp))
        try:
            note = cp.parse(text) if text else None
        except ValueError as exc:
            out.append(f"the checkpoint note of {tr.tp_key(tp)} is unreadable ({exc})")
            continue
        if note is None:
            out.append(f"no checkpoint note covers tree {tr.tp_key(tp)}")
        elif (bad := cp.check(note, trust)) is not None:
            out.append(f"the checkpoint note of {tr.tp_key(tp)} is {bad}")
        elif (note.size, note.root) != (size, root):
            out.append(
                f"tree {tr.tp_key(tp)} (size {size}) is not the one its checkpoint signed "
                f"(size {note.size})"
            )
    return out


def read_state(views: ViewStore) -> State:
    stored = views.get(tr.TREES) or {}
    trees = {}
    for key, doc in stored.items():
        frontier = Frontier.from_doc(doc)
        trees[tr.parse_tp(key)] = (frontier.size, frontier.root())
    notes = {str(k): str(v) for k, v in (views.get(NOTES) or {}).items()}
    shape = (views.get(keys.SHAPE) or {}).get("version")
    return State(dict(views.tracking(PROJECTOR)), trees, notes, shape)


def file_digest(path: Path, copy_to: Path | None = None) -> tuple[str, int]:
    """SHA-256 and size of a file, copying it on the way where asked (one read)."""
    h, n = hashlib.sha256(), 0
    with ExitStack() as files:
        src = files.enter_context(open(path, "rb"))
        dst = files.enter_context(open(copy_to, "wb")) if copy_to is not None else None
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
            if dst is not None:
                dst.write(chunk)
    return h.hexdigest(), n


# -- writing -----------------------------------------------------------------------------------
def _export(views: ViewStore, out: Path) -> None:
    """The views into a new SQLite file, consistently. An SQLite store copies itself in one
    read transaction (VACUUM INTO); any other store is read entry by entry, again if a fold
    moved its tracking meanwhile."""
    if isinstance(views, SqliteViewStore):
        with views._lock:  # the store's own connection: one consistent read
            views._db.execute("VACUUM INTO ?", [str(out)])
        return
    for _ in range(5):
        before = views.tracking(PROJECTOR)
        dump = views.snapshot()
        if views.tracking(PROJECTOR) != before:
            continue
        out.unlink(missing_ok=True)
        copy = SqliteViewStore(out)
        try:
            updates: list[Any] = [Put(k, d) for k, d in dump["docs"].items()]
            updates += [
                IndexAdd(name, m, s) for name, ms in dump["indexes"].items() for m, s in ms.items()
            ]
            updates += [SetAdd(name, tuple(sorted(ms))) for name, ms in dump["sets"].items()]
            tracking = [
                Tracking(p, {tr.parse_tp(k): int(o) for k, o in pos.items()})
                for p, pos in dump["tracking"].items()
            ]
            copy.apply(updates, tracking[0] if tracking else None)
            for t in tracking[1:]:
                copy.apply([], t)
        finally:
            copy.close()
        return
    raise KeelError(
        "the views kept moving while they were read for a snapshot",
        hint="try again, or snapshot from a store nothing folds into meanwhile",
    )


def write(views: ViewStore, directory: Path, signer: Signer, keep: int = 3) -> Path:
    """Snapshot `views` into `directory` and sign its manifest with the audit key; keep the
    `keep` newest snapshots. Refused unless the views stand at a checkpoint they hold (fold
    them with the audit key first: the projector publishes one at the end of each run)."""
    if not signer.can_sign(cp.AUDIT_IDENTITY):
        raise KeelError(
            "a views snapshot is signed with the audit key, which is not available here",
            hint="run it where the projector runs (the audit key's host), or set KEEL_KEYS_DIR",
        )
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"views-tmp-{os.getpid()}-{time.time_ns()}"
    tmp = directory / f"{stem}.db"
    try:
        _export(views, tmp)
        copy = SqliteViewStore(tmp)
        try:
            state = read_state(copy)
            # Kept in WAL mode, its WAL emptied (and removed at close): the .db file is the whole
            # snapshot, and a replica opening its copy switches no journal mode, which would
            # sync the whole freshly copied file to disk first (~1 GB at 1M events).
            copy._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            copy.close()
        if not state.positions:
            raise KeelError(
                "the views are empty: nothing to snapshot", hint="fold them: `keel audit project`"
            )
        bare = {tr.tp_key(tp): size for tp, (size, _) in state.trees.items()}
        covered = {k: cp.parse(n).size for k, n in state.notes.items()}
        if bare != covered:
            raise KeelError(
                "the views are past their last checkpoint: a snapshot must stand at one",
                hint="fold them with the audit key (`keel audit project`), which signs one",
            )
        digest, nbytes = file_digest(tmp)
        text = manifest_text(
            digest,
            nbytes,
            state.positions,
            state.trees,
            datetime.now(UTC),
            signer.trust.digest(),
        )
        final = directory / f"views-{sum(state.positions.values()):015d}-{time.time_ns()}"
        tmp.rename(final.with_suffix(".db"))
        note = final.with_suffix(".note")
        note.with_suffix(".note-tmp").write_text(cp.sign(text, signer))
        note.with_suffix(".note-tmp").rename(note)  # a snapshot exists once its note does
    finally:
        for leftover in directory.glob(f"{stem}*"):
            leftover.unlink()
    for old in listed(directory)[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".db").unlink(missing_ok=True)
    return final.with_suffix(".db")


def listed(directory: Path) -> list[Path]:
    """The snapshots' manifests, newest (most events) first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob("views-*.note"), reverse=True)


# -- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restored:
    """How a replica started: from `snapshot` (None: from the log's beginning) at `events`,
    after refusing `refused` (one sentence each, naming the file), in `seconds`."""

    snapshot: str | None
    events: int
    refused: tuple[str, ...]
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "events": self.events,
            "refused": list(self.refused),
            "seconds": round(self.seconds, 3),
        }


def load(note_path: Path, replica: Path, trust: Trust) -> Manifest:
    """Copy a snapshot to `replica` if it verifies, else raise SnapshotRefused (the replica is
    left untouched)."""
    try:
        manifest = parse_manifest(note_path.read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotRefused(f"snapshot {note_path.name} refused: {exc}") from None
    replica.parent.mkdir(parents=True, exist_ok=True)
    tmp = replica.with_name(replica.name + ".restoring")
    for side in ("", "-wal", "-shm"):
        Path(str(tmp) + side).unlink(missing_ok=True)
    try:
        digest, nbytes = file_digest(note_path.with_suffix(".db"), copy_to=tmp)
        found = problems(manifest, trust, digest, nbytes, None)
        if not found:  # only a file that is what was signed is opened at all
            views = SqliteViewStore(tmp)
            try:
                found = problems(manifest, trust, digest, nbytes, read_state(views))
            finally:
                views.close()
    except OSError as exc:
        found = [f"its views file is unreadable ({exc})"]
    if found:
        for side in ("", "-wal", "-shm"):
            Path(str(tmp) + side).unlink(missing_ok=True)
        raise SnapshotRefused(
            f"snapshot {note_path.name} refused: " + "; ".join(found),
            hint="the views are folded from the log instead; find out who changed the "
            "snapshot, then delete it (the projector or `keel audit snapshot` writes a new one)",
        )
    for side in ("-wal", "-shm"):
        Path(str(replica) + side).unlink(missing_ok=True)
        if Path(str(tmp) + side).exists():
            Path(str(tmp) + side).rename(Path(str(replica) + side))
    tmp.rename(replica)
    return manifest


def restore(directory: Path, replica: Path, trust: Trust) -> Restored:
    """Start `replica` from the newest snapshot in `directory` that verifies; each refused one
    is logged as an error and named in the result. No snapshot verifying: the replica is left
    as it is (the fold starts from the log's beginning)."""
    refused, t0 = [], time.perf_counter()
    for note in listed(directory):
        try:
            manifest = load(note, replica, trust)
        except SnapshotRefused as exc:
            logger.error("%s (%s)", exc, exc.hint)
            refused.append(str(exc))
            continue
        return Restored(note.stem, manifest.events, tuple(refused), time.perf_counter() - t0)
    return Restored(None, 0, tuple(refused), time.perf_counter() - t0)


def _read_only(path: Path) -> SqliteViewStore:
    """A views file opened for reading only, where it lies: SQLite refuses any write through it
    and takes no lock (immutable), so the snapshot is never changed by its readers."""
    store = SqliteViewStore.__new__(SqliteViewStore)
    store._lock = threading.Lock()
    store._db = sqlite3.connect(
        f"file:{path}?immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )
    return store


def open_newest(directory: Path, trust: Trust) -> tuple[SqliteViewStore, Manifest] | None:
    """The newest snapshot that verifies, opened read-only where it lies (no copy): an API
    answers from it, stale by the tail and saying so, while its replica is copied and folded.
    Each refused one is logged as an error, as `restore` does."""
    for note in listed(directory):
        try:
            manifest = parse_manifest(note.read_text())
            db = note.with_suffix(".db")
            views = _read_only(db)  # opened first: the file read is the file hashed
            digest, nbytes = file_digest(db)
            found = problems(manifest, trust, digest, nbytes, None)
            found = found or problems(manifest, trust, digest, nbytes, read_state(views))
        except (OSError, ValueError, sqlite3.Error) as exc:
            logger.error("snapshot %s unreadable: %s", note.name, exc)
            continue
        if found:
            views.close()
            logger.error("snapshot %s refused: %s", note.name, "; ".join(found))
            continue
        return views, manifest
    return None


# -- the projector service's periodic snapshots --------------------------------------------------
EVERY = 600.0  # seconds between snapshots while the log moves
IDLE = 5.0  # a snapshot is taken between batches, once the projector has been idle this long


def due(
    now: float,
    last_at: float,
    last_events: int,
    events: int,
    idle: float,
    every: float = EVERY,
    busy_ok: bool = True,
) -> bool:
    """Whether the projector service takes a snapshot now: the views moved since the last one,
    and `every` seconds passed with the projector idle for IDLE seconds (the export then delays
    no batch), or 4 x `every` passed (a log that never rests still gets one) where an export is
    cheap enough to take between busy batches (`busy_ok`)."""
    if events == last_events:
        return False
    waited = now - last_at
    return (waited >= every and idle >= IDLE) or (busy_ok and waited >= 4 * every)


class Periodic:
    """Snapshots for a projector service (the views' only writer, so between its batches they
    stand still, at the checkpoint each batch signs). Does nothing without the audit key."""

    def __init__(
        self,
        views: ViewStore,
        directory: Path,
        signer: Signer | None,
        every: float = EVERY,
        stored: Callable[[Path], object] | None = None,
    ) -> None:
        """stored: called with each snapshot written (keel.audit.snapshot_store.record puts it
        in the artifact store and records it on the log, for replicas sharing no home)."""
        self.views, self.directory, self.signer, self.every = views, directory, signer, every
        self.stored = stored
        self.enabled = signer is not None and signer.can_sign(cp.AUDIT_IDENTITY)
        # an SQLite store copies itself in one statement; any other is read key by key
        # (minutes at 1M events on Redis): only while the projector is idle
        self.cheap = isinstance(views, SqliteViewStore)
        self.last_at = time.monotonic()
        self.last_events = -1 if self.enabled else 0

    def maybe(self, idle: float) -> Path | None:
        if not self.enabled or self.signer is None:
            return None
        now = time.monotonic()
        if now - self.last_at < self.every:  # cheap: no views read between snapshots
            return None
        events = sum(self.views.tracking(PROJECTOR).values())
        if not due(now, self.last_at, self.last_events, events, idle, self.every, self.cheap):
            return None
        self.last_at, self.last_events = now, events
        try:
            made = write(self.views, self.directory, self.signer)
        except KeelError as exc:  # e.g. views past their checkpoint: the next one will do
            logger.warning("no views snapshot this time: %s (%s)", exc, exc.hint)
            return None
        if self.stored is not None:
            try:
                self.stored(made)
            except Exception as exc:  # the object store away: the local one still serves
                logger.error("views snapshot %s not stored in the artifact store: %s", made, exc)
        return made
