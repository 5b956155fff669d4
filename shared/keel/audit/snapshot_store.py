"""Views snapshots in the artifact store, recorded on the log (issue 35, decision 0029's "what
would move it next"): a snapshot in KEEL_HOME/snapshots is found only by a process sharing that
home; a fresh audit API pod on another machine shares the log and the object store instead.

`record` puts a snapshot's two files (the views' SQLite file and its signed manifest) into the
artifact store (content-addressed, each announced with its ArtifactRecorded as every artifact)
and appends a ViewsSnapshotted, signed by the audit key, to the audit topic. `fetch` finds the
newest recorded snapshots from the end of the audit topic and copies the newest one a replica
does not hold yet into its snapshots directory, where `keel.audit.snapshot.restore` verifies it
(manifest signature, file digest, the views' trees against their signed checkpoints) exactly
as a snapshot written there; bytes that are not what the signed event and the store's catalog
say are refused before anything is placed.

Not in the projection: the audit topic is derived from the event topics, never folded into the
views (a snapshot must not change the views it snapshots).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.artifacts import recording
from keel.artifacts.ids import ArtifactSpec
from keel.audit import snapshot as sn
from keel.codec import CodecError
from keel.errors import KeelError
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.topics import AUDIT_TOPIC

logger = logging.getLogger(__name__)
KIND_VIEWS = "views-snapshot"
KIND_MANIFEST = "views-manifest"
CODE_VERSION = "views-snapshot/1"  # the file layout (keel.audit.snapshot.ORIGIN)
SERVICE = "audit"  # signed by the audit identity, as the manifest and the checkpoints
_WINDOW = 64  # audit-topic records read first from its end; doubled until enough are found
_NAME = re.compile(r"views-[0-9]+-[0-9]+")  # as keel.audit.snapshot.write names them


def wanted(rt: Any) -> bool:
    """Whether snapshots go to the artifact store too: where the log is shared (Kafka), so an
    API replica on another machine can find them. The embedded log lives in one home, where
    the snapshots directory already is."""
    return bool(getattr(rt.log, "remote", False))


def record(rt: Any, path: Path, projector: str = sn.PROJECTOR) -> g.ViewsSnapshotted:
    """Store the snapshot at `path` (its .db; the .note beside it) and record it on the log."""
    note = path.with_suffix(".note")
    text = note.read_bytes()
    manifest = sn.parse_manifest(text.decode())
    common: dict[str, Any] = {
        "publish": rt.publish,
        "service": SERVICE,
        "actor": "projector",
        "correlation_id": path.stem,
    }
    views, _ = recording.record(
        rt.artifacts,
        ArtifactSpec(KIND_VIEWS, CODE_VERSION, {"projector": projector}, (), manifest.digest),
        path,
        **common,
    )
    signed, _ = recording.record(
        rt.artifacts,
        ArtifactSpec(
            KIND_MANIFEST,
            CODE_VERSION,
            {"projector": projector},
            (views.id,),
            hashlib.sha256(text).hexdigest(),
        ),
        note,
        **common,
    )
    event = g.ViewsSnapshotted(
        envelope=envelope(
            "ViewsSnapshotted",
            subject=AUDIT_TOPIC,  # the checkpoints' partition: one order for both
            service=SERVICE,
            code_version=CODE_VERSION,
            actor="projector",
            correlation_id=path.stem,
        ),
        projector=projector,
        name=path.stem,
        views_artifact=views.id,
        manifest_artifact=signed.id,
        sha256=manifest.digest,
        size=manifest.nbytes,
        events=manifest.events,
    )
    rt.publish([event])
    return event


def recorded(rt: Any, projector: str = sn.PROJECTOR, want: int = 3) -> list[g.ViewsSnapshotted]:
    """Up to `want` snapshots recorded on the audit topic, newest first, each signed by a key
    allowed to record them (others are logged and left out). Read from the topic's end in
    growing windows: checkpoints dominate that topic, and its beginning is rarely needed."""
    found: list[g.ViewsSnapshotted] = []
    for event in _newest_first(rt):
        if event.projector == projector:
            found.append(event)
            if len(found) >= want:
                break
    return sorted(found, key=lambda e: (e.events, e.name), reverse=True)


def _newest_first(rt: Any) -> Iterator[g.ViewsSnapshotted]:
    ends = rt.log.end_offsets([AUDIT_TOPIC])
    upto, window = dict(ends), _WINDOW
    while any(o > 0 for o in upto.values()):
        start = {tp: max(0, o - window) for tp, o in upto.items()}
        page = []
        for rec in rt.log.read([AUDIT_TOPIC], start):
            if rec.offset >= upto.get(rec.tp, 0):
                continue
            try:
                event = decode_event(rt.codec, rec.value)
            except CodecError:
                continue  # `keel audit verify` reports it
            if not isinstance(event, g.ViewsSnapshotted) or not _NAME.fullmatch(event.name):
                continue  # (a name is a file stem here: never a path)
            if rt.trust.enabled:
                verdict = rt.trust.check(rec.value, rec.sig, event.EVENT_TYPE)
                if verdict.problem:
                    logger.error("%s at %s ignored: %s", event.EVENT_TYPE, rec.offset, verdict)
                    continue
            page.append((rec.offset, event))
        yield from (e for _, e in sorted(page, key=lambda p: p[0], reverse=True))
        upto, window = start, window * 2


def fetch(rt: Any, directory: Path, projector: str = sn.PROJECTOR, keep: int = 3) -> list[str]:
    """Copy the newest recorded snapshot that `directory` lacks into it (`restore` then verifies
    and loads it). Stops at the first one already there: older ones would not be used. Returns
    one sentence per snapshot refused on the way (bytes not what was recorded, unreadable)."""
    refused: list[str] = []
    for event in recorded(rt, projector, keep):
        stem = directory / event.name
        if stem.with_suffix(".note").exists():
            break
        try:
            _download(rt, event, stem)
        except (KeelError, OSError) as exc:
            hint = getattr(exc, "hint", "") or ""
            why = f"snapshot {event.name} in the artifact store refused: {exc}"
            logger.error("%s (%s)", why, hint or "the views are folded from the log instead")
            refused.append(why)
            continue
        break
    for old in sn.listed(directory)[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".db").unlink(missing_ok=True)
    return refused


def _download(rt: Any, event: g.ViewsSnapshotted, stem: Path) -> None:
    """The two files into place, the note last (a snapshot exists once its note does); both
    checked on the way: the views file against the signed event's digest and the store's
    catalog, the manifest's signature and the digest it names."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    part = stem.with_suffix(".db-part")
    try:
        with open(part, "wb") as out:
            rt.artifacts.copy_to(event.views_artifact, out, recorded=event.sha256)
        text = rt.artifacts.read_bytes(event.manifest_artifact).decode()
        try:
            manifest = sn.parse_manifest(text)
        except ValueError as exc:
            raise KeelError(f"its manifest is unreadable ({exc})") from None
        found = sn.problems(manifest, rt.trust, event.sha256, event.size, None)
        if found:
            raise KeelError("; ".join(found))
        part.rename(stem.with_suffix(".db"))
        stem.with_suffix(".note-part").write_text(text)
        stem.with_suffix(".note-part").rename(stem.with_suffix(".note"))
    finally:
        part.unlink(missing_ok=True)
