"""One verification of everything the answers come from (`keel audit verify`, the client):
signatures on every event, the log's Merkle trees against every checkpoint (in the log and
from witnesses), the artifact catalog and bytes against the signed records, the views against a
fresh fold. Returns a report naming every problem; nothing here prints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keel.audit import citations, gcpause
from keel.audit import trees as tr
from keel.audit import verify as vf
from keel.audit.anchors import default_witness
from keel.audit.projectors import projector_for
from keel.audit.witness_client import equivocations, remote_notes
from keel.bootstrap import Runtime
from keel.codec import CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.events import generated as g
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.sqlite import SqliteViewStore

PARTS = ("artifacts", "views")
# where verify folds the views it compares with the live ones (SQLite's in-memory database)
FRESH_VIEWS = ":memory:"


class Stages:
    """Wall and CPU seconds of each stage of one verify, in the order they ran (bench_verify's
    breakdown; verify itself passes none)."""

    def __init__(self) -> None:
        self.seconds: dict[str, tuple[float, float]] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = self.seconds.get(name, (0.0, 0.0))
            self.seconds[name] = (
                wall + time.perf_counter() - t0,
                cpu + time.process_time() - c0,
            )


@contextmanager
def _untimed(name: str) -> Iterator[None]:
    yield


def run_verify(rt: Runtime, checkpoint: Sequence[Path], skip: Sequence[str]) -> dict[str, Any]:
    """The report (bring the views to the log's end first); `skip`: parts left out
    (artifacts, views), said in the report."""
    return verify_scan(rt, checkpoint, skip)[0]


def verify_scan(
    rt: Runtime,
    checkpoint: Sequence[Path],
    skip: Sequence[str],
    keep: Callable[[Any], None] | None = None,
    witnesses: Sequence[str] = (),
    stages: Stages | None = None,
) -> tuple[dict[str, Any], vf.LogScan]:
    """run_verify's report and the log scan it made (leaves and positions, for proofs);
    `keep` sees every event whose signature checked; `witnesses`: HTTP witnesses' URLs (the
    home's default local witness is always consulted); `stages`: each stage's time added to it."""
    stage = stages or _untimed
    skipped = sorted(set(skip))
    unknown = set(skipped) - set(PARTS)
    if unknown:
        raise KeelError(
            f"--skip {', '.join(sorted(unknown))}: unknown part", hint="parts: artifacts, views"
        )
    problems: list[vf.Problem] = []
    catalog: dict[str, tuple[str, int]] = {}
    differing = 0
    # the notes first: they say which leaf format each tree holds where (decision 0021)
    with stage("notes"):
        notes = [*log_notes(rt, problems), *witness_notes(list(checkpoint), problems)]
        local = default_witness(rt)
        if local is not None:
            notes += [(f"default witness {local.where}", n) for n in local.notes()]
        remote, conflicts = remote_notes(witnesses, rt.trust)
        notes += remote
        leaf2_from = vf.leaf_rule(notes, rt.trust)
    # the scan keeps the roots at the sizes the checks compare, not every leaf (unless `keep`:
    # a report's proofs need them); the fold core decodes, checks and hashes (decision 0027)
    with stage("log scan"):
        scan = vf.scan_log(
            rt.log.read(list(EVENT_TOPICS)),
            rt.codec,
            rt.trust,
            problems,
            keep,
            leaf2_from,
            watch=vf.watch_sizes(notes, rt.trust),
            fold=rt.settings.fold,
        )
    with stage("trail checks"):
        # an adoption the trail records but keys.toml lacks: its root read again (rare:
        # keys.toml then differs from the trail, which check_keyring reports too)
        if missing := scan.unanswered(vf.adopted_sizes(scan)):
            topics = sorted({tp[0] for tp, _ in missing})
            vf.fill_roots(rt.log.read(topics), scan, missing, leaf2_from)
        citations.check(scan.promotions, scan.citing, problems)
        trees = vf.check_checkpoints(notes, scan, rt.trust, problems)
        for e in equivocations(notes, conflicts, rt.trust):
            problems.append(
                vf.Problem(
                    "checkpoint",
                    "equivocation",
                    e["where"],
                    f"one audit key signed two histories that cannot both be true "
                    f"({e['detail']}):\n{e['first']}\n{e['second']}",
                    "the audit key's holder showed different logs to different readers: find "
                    "which copy is genuine (a backup, the witnesses' notes) and treat the key as "
                    "leaked",
                )
            )
        keyring = vf.check_keyring(scan, notes, rt.trust, problems)  # decision 0022
    if "artifacts" not in skipped:
        with stage("artifacts"):
            catalog = {
                aid: (i.digest, i.size)
                for aid in rt.artifacts.all_ids()
                for i in [rt.artifacts.info(aid)]
            }
            blobs = {aid: rt.artifacts.blob_digest(aid) for aid in catalog}
            vf.check_catalog(catalog, blobs, scan, problems)
    if "views" not in skipped:
        # the fresh fold is read once and dropped: in memory, no file written and synced, and
        # closed before the live views are read (the two snapshots' dicts are the peak)
        fresh = SqliteViewStore(Path(FRESH_VIEWS))
        try:
            with stage("views: fresh fold"):
                projector_for(rt, fresh, checkpoints="none").run()
            # the snapshots build millions of dicts, none in cycles: the collector's passes
            # over them cost as much as building them (keel.audit.gcpause)
            with stage("views: fresh snapshot"), gcpause.paused():
                folded = fresh.snapshot()
        finally:
            fresh.close()
        with gcpause.paused():
            with stage("views: live snapshot"):
                live = rt.views.snapshot()
            with stage("views: compare"):
                differing = vf.check_views(live, folded, problems)
    report = {
        "ok": not problems,
        "events": scan.records,
        "fold": scan.fold,
        "signed": scan.signed,
        "trees": trees,
        "keyring": keyring,
        "artifacts": len(catalog),
        "view_keys_differing": differing,
        "skipped": skipped,
        "problems": [p.as_dict() for p in problems],
    }
    return report, scan


def checkpoints(
    rt: Runtime, problems: list[vf.Problem] | None = None
) -> Iterator[tuple[str, g.Checkpoint]]:
    """(position, Checkpoint) for every checkpoint in the audit topic, in log order; records
    that do not decode are reported into `problems` when given."""
    for rec in rt.log.read([AUDIT_TOPIC]):
        try:
            event = decode_event(rt.codec, rec.value)
        except CodecError as exc:
            if problems is not None:
                problems.append(
                    vf.Problem(
                        "checkpoint",
                        "undecodable",
                        tr.position(rec),
                        str(exc),
                        "find who wrote to the audit topic",
                    )
                )
            continue
        if isinstance(event, g.Checkpoint):
            yield tr.position(rec), event


def checkpoints_tail(rt: Runtime, window: int = 8) -> g.Checkpoint | None:
    """The newest checkpoint, read from the audit topic's last few records only (a page that
    shows it must not read every checkpoint ever published)."""
    ends = rt.log.end_offsets([AUDIT_TOPIC])
    start = {tp: max(0, end - window) for tp, end in ends.items()}
    latest = None
    for rec in rt.log.read([AUDIT_TOPIC], start, window):
        try:
            event = decode_event(rt.codec, rec.value)
        except CodecError:
            continue  # `verify` reports it; the page shows the newest readable one
        if isinstance(event, g.Checkpoint) and (
            latest is None or event.envelope.occurred_at >= latest.envelope.occurred_at
        ):
            latest = event
    return latest


def log_notes(rt: Runtime, problems: list[vf.Problem]) -> list[tuple[str, str]]:
    return [
        (f"checkpoint at {where}", t.note)
        for where, event in checkpoints(rt, problems)
        for t in event.trees
    ]


def witness_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(p.glob("*.json"))
        elif p.exists():
            out.append(p)
        else:
            raise KeelError(f"checkpoint file {p} does not exist")
    return out


def witness_notes(paths: list[Path], problems: list[vf.Problem]) -> list[tuple[str, str]]:
    notes = []
    for path in witness_files(paths):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            notes += [(f"witness {path.name}", str(n)) for n in doc["notes"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(
                vf.Problem(
                    "checkpoint", "malformed", str(path), str(exc), "restore the witness's copy"
                )
            )
    return notes
