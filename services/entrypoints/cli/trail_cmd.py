"""`keel audit verify / checkpoint / prove / rebuild`: the trust side of the trail."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit import trees as tr
from keel.audit import verify as vf
from keel.audit.anchors import RESET_HINT, RewriteRefused
from keel.audit.projector import Progress
from keel.audit.projectors import projector_for
from keel.audit.verify_run import checkpoints, verify_scan, witness_notes
from keel.audit.witness_client import offer
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.events import generated as g
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore
from keel_services.entrypoints.cli import witness_cmd
from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.container import build

JsonOpt = typer.Option(False, "--json", help="print JSON")
WitnessOpt = typer.Option(
    None,
    "--checkpoint",
    help="a checkpoint kept outside the log (file written by `keel audit checkpoint --to`, or "
    "a directory of them); repeatable",
)


def _project(rt: Runtime, refused: list[str] | None = None) -> None:
    """Fold the views and publish a checkpoint if the trees grew; `refused` given: a refusal
    to sign (the log no longer extends a checkpoint) is collected there instead of raised."""
    try:
        projector_for(rt).run()
    except RewriteRefused as exc:
        if refused is None:
            raise
        refused.append(str(exc))


WitnessUrlOpt = typer.Option(
    None,
    "--witness",
    help="an HTTP witness (`keel audit witness serve`) by URL; repeatable",
)


def verify(
    checkpoint: list[Path] | None = WitnessOpt,
    skip: list[str] | None = typer.Option(
        None,
        "--skip",
        help="leave out a part: artifacts (e.g. on a machine without the artifact store) or "
        "views; the report says what was skipped",
    ),
    witness: list[str] | None = WitnessUrlOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check everything the answers come from: signatures on every event, the log's Merkle
    trees against every checkpoint (in the log, the home's default local witness and any
    witness given), the artifact catalog and bytes against the signed records, the views
    against a fresh fold; one audit key signing two histories is reported as equivocation.
    Exit 1 on any problem."""
    refused: list[str] = []
    with build(create=False) as app:
        rt = app.rt
        _project(rt, refused)
        doc = verify_scan(rt, checkpoint or [], skip or [], witnesses=witness or [])[0]
    for message in refused:
        doc["ok"] = False
        doc["problems"].append(
            vf.Problem("checkpoint", "refused", "log", message, RESET_HINT).as_dict()
        )
    if json_out:
        print_json(doc)
    else:
        _print_report(doc)
    if doc["problems"]:
        raise typer.Exit(1)


def _print_report(doc: dict[str, Any]) -> None:
    from rich.table import Table

    t = doc["trees"]
    console.print(
        f"{doc['events']} events, {doc['signed']} with valid signatures; "
        f"{t['checked']} checkpoint notes checked; {doc['artifacts']} artifacts; "
        f"views compared with a fresh fold",
        highlight=False,
    )
    if doc["skipped"]:
        console.print(f"skipped: {', '.join(doc['skipped'])}", highlight=False)
    if t["uncovered"]:
        console.print(f"not yet covered by a checkpoint: {t['uncovered']}", highlight=False)
    for reset in (doc.get("keyring") or {}).get("trust_resets", []):
        console.print(reset["line"], highlight=False, markup=False)
    if doc["ok"]:
        console.print("verified: no problems")
        return
    table = Table(title=f"{len(doc['problems'])} problem(s)")
    for col in ("area", "kind", "where", "what", "what to do"):
        table.add_column(col, overflow="fold")
    for p in doc["problems"]:
        # recorded text is data: never interpreted as markup
        table.add_row(*(_plain(p[k]) for k in ("area", "kind", "where", "detail", "todo")))
    console.print(table)


def _plain(text: str) -> Any:
    from rich.text import Text

    return Text("".join(c if c.isprintable() else "?" for c in text))


def _latest_checkpoint(rt: Runtime) -> tuple[g.Checkpoint, str]:
    latest: tuple[g.Checkpoint, str] | None = None
    for where, event in checkpoints(rt):
        latest = (event, where)
    if latest is None:
        raise KeelError(
            "the log holds no checkpoint yet",
            hint="run `keel audit project` with the audit key available (KEEL_KEYS_DIR)",
        )
    return latest


def checkpoint(
    to: str | None = typer.Option(
        None,
        "--to",
        help="a file, a directory (W/ or an existing one: a new file per checkpoint, all kept) "
        "or an http(s) URL (POSTed as JSON)",
    ),
    witness: list[str] | None = WitnessUrlOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Bring the trees up to date and hand the latest signed checkpoint to a witness outside the
    log. Keep witnesses where whoever can write the log cannot: truncation or rewriting is then
    detected against them (`keel audit verify --checkpoint PATH` / `--witness URL`). An HTTP
    witness (--witness) takes each tree's note only with a consistency proof from the one it
    holds; exit 1 if one refuses."""
    if not to and not witness:
        raise KeelError(
            "say where the checkpoint goes",
            hint="--to FILE|DIR/|URL, or --witness URL of `keel audit witness serve`",
        )
    with build(create=False) as app:
        rt = app.rt
        _project(rt)
        event, where = _latest_checkpoint(rt)
        answers = _offer_all(rt, event, witness or [])
        audit_keys = {
            cp.key_name(k): base64.b64encode(k.public).decode()
            for k in rt.trust.keys.values()
            if k.identity == cp.AUDIT_IDENTITY
        }
    doc = {
        "checkpoint_event_id": event.envelope.event_id,
        "at": event.envelope.occurred_at.isoformat(),
        "position": where,
        "notes": [t.note for t in event.trees],
        "audit_public_keys": audit_keys,
    }
    body = json.dumps(doc, indent=2) + "\n"
    target = ", ".join(witness or [])
    if to is None:
        pass
    elif to.startswith(("http://", "https://")):
        req = urllib.request.Request(
            to, body.encode(), {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status = resp.status
        except OSError as exc:
            raise KeelError(f"the witness at {to} did not take the checkpoint: {exc}") from exc
        target = f"{to} (HTTP {status})"
    else:
        path = Path(to)
        if to.endswith(("/", os.sep)) and not path.exists():
            path.mkdir(parents=True)  # W/ asks for a directory: every checkpoint kept there
        if path.is_dir():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            path = path / f"checkpoint-{stamp}.json"
        path.write_text(body, encoding="utf-8")
        target = str(path)
    refused = [a for a in answers if a["status"] != 200]
    if json_out:
        print_json({**doc, "written_to": target, "witnesses": answers})
    else:
        sizes = ", ".join(f"{t.topic}/{t.partition}={t.size}" for t in event.trees)
        console.print(f"checkpoint {where} ({sizes}) -> {target}", highlight=False)
        for a in refused:
            console.print(
                f"witness {a['witness']} refused {a['origin']}: "
                f"{a.get('conflict') or a.get('error') or a}",
                highlight=False,
            )
    if refused:
        raise typer.Exit(1)


def _offer_all(rt: Runtime, event: g.Checkpoint, urls: list[str]) -> list[dict[str, Any]]:
    """Each tree's note to each HTTP witness, with proofs from the log's leaves (in the leaf
    format the notes' trees hold them)."""
    if not urls:
        return []
    notes = [("log", t.note) for t in event.trees]
    switches = vf.leaf_rule(notes, rt.trust)
    leaves: dict[tuple[str, int], list[bytes]] = {}
    for rec in rt.log.read(list(EVENT_TOPICS)):
        tree = leaves.setdefault(rec.tp, [])
        tree.append(tr.leaf_at(rec, len(tree), switches.get(rec.tp, 0)))
    keys = {cp.key_name(k): k.public for k in rt.trust.keys.values()}
    answers = []
    for url in urls:
        for t in event.trees:
            name = cp.parse(t.note).signatures[0][0]
            answer = offer(url, t.note, keys[name], leaves)
            answers.append({**answer, "witness": url, "origin": f"{t.topic}/{t.partition}"})
    return answers


def prove(
    event_id: str = typer.Argument(..., help="the event's ID"),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="prove against this witness checkpoint instead of the latest"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """An inclusion proof for one event: its leaf, the audit path to a checkpoint's root, the
    signed checkpoint note and the audit public key. Anyone can check it with SHA-256 and
    Ed25519 alone (see README, "Trust model")."""
    problems: list[vf.Problem] = []
    with build(create=False) as app:
        rt = app.rt
        _project(rt)
        # leaves and the position only: a proof says "this record is in the tree", whoever
        # signed it (verify checks signatures)
        notes = (
            witness_notes([checkpoint], problems)
            if checkpoint
            else [("log", t.note) for t in _latest_checkpoint(rt)[0].trees]
        )
        # the leaves in the format the checkpoint's tree holds them (decision 0021)
        leaf2_from = vf.leaf_rule(notes, rt.trust)
        found = vf.locate(rt.log.read(list(EVENT_TOPICS)), event_id, rt.codec, leaf2_from)
        if found is None:
            raise KeelError(f"no event {event_id} in the log", hint="see `keel audit tail`")
        tp, index, rec, tree = found
        keys = {cp.key_name(k): k for k in rt.trust.keys.values()}
    mine = [(parsed, n) for _, n in notes if (parsed := cp.parse(n)).tree == tp]
    if not mine or mine[-1][0].size <= index:
        raise KeelError(
            f"no checkpoint covers {tr.position(rec)} yet",
            hint="run `keel audit project` (with the audit key) to publish one",
        )
    note, note_text = mine[-1]
    leaves = tree[: note.size]
    path = merkle.inclusion_proof(index, leaves)
    assert merkle.verify_inclusion(index, note.size, leaves[index], path, note.root)
    signer = keys.get(note.signatures[0][0])
    doc = {
        "event_id": event_id,
        **tr.proof_fields(rec, index, note.size, path, leaf2_from.get(tp, 0)),
        "root": note.root.hex(),
        "checkpoint": note_text,
        "audit_public_key": {
            "name": note.signatures[0][0],
            "ed25519": base64.b64encode(signer.public).decode() if signer else None,
        },
    }
    if json_out:
        print_json(doc)
    else:
        console.print_json(json.dumps(doc))


def rebuild(json_out: bool = JsonOpt) -> None:
    """Drop the views and fold them again from the log (e.g. after `verify` found them
    altered). The log and its trees are the source. What the views showed before and after is
    compared (families, models, datasets, deployments, events per type): anything gone is
    listed with why the fold kept its events out (issue 33, item 9). SQLite views are folded
    in memory (past KEEL_REBUILD_MEMORY_MB, default 4096, spilled into a file beside them) and
    written over them in one transaction: a killed rebuild leaves them as they were (decision
    0034)."""
    from keel.audit import rebuild as rb

    with build(create=False) as app:
        rt = app.rt
        rb.refuse_while_served(rt.views, "`keel audit rebuild`")  # before reading them
        before = rb.shown(rt.views)

        took: dict[str, float] = {}

        def fold(views: ViewStore) -> Progress:
            t0, c0 = time.perf_counter(), time.process_time()
            projector = projector_for(rt, views)
            projector.batch_size = rb.REBUILD_BATCH  # a larger batch for a whole-log fold
            progress = projector.run()
            took.update(fold=time.perf_counter() - t0, fold_cpu=time.process_time() - c0)
            folded_into.append(views)
            return progress

        folded_into: list[ViewStore] = []

        # SQLite views: folded in memory, then written over them in one transaction
        t0 = time.perf_counter()
        p = rb.fold_afresh(
            rt.views, fold, "`keel audit rebuild`", memory_mb=rt.settings.rebuild_memory_mb
        )
        took["replace"] = time.perf_counter() - t0 - took["fold"]  # the write (SQLite views)
        # times the memory budget was passed and the held views spilled into a file (0: none)
        spills = int(getattr(folded_into[0], "spills", 0)) if folded_into else 0
        after = rb.shown(rt.views)
        lost = rb.gone(before, after)
        why = rb.why_gone(rt.views) if lost else {}
    doc: dict[str, Any] = {
        "applied": p.applied,
        "rejected": p.rejected,
        "undecodable": p.undecodable,
        "fold": p.fold,  # which fold core ran: native (keel_fold) or python (decision 0027)
        "before": rb.counts(before),
        "after": rb.counts(after),
        "gone": lost,
        "why_gone": why,
        "seconds": took,  # wall (fold, replace) and the fold's CPU: decision 0034's bench
        "spills": spills,  # KEEL_REBUILD_MEMORY_MB passed this many times (decision 0034)
    }
    if json_out:
        print_json(doc)
        return
    console.print(
        f"views folded again: {p.applied} events applied, {p.rejected} kept out "
        f"(bad signatures), {p.undecodable} undecodable (fold: {p.fold})",
        highlight=False,
    )
    for kind in ("families", "models", "datasets", "deployments"):
        console.print(
            f"  {kind}: {doc['before'][kind]} before, {doc['after'][kind]} now", highlight=False
        )
    if lost:
        console.print("no longer shown after the rebuild:", style="bold red")
        for sentence in lost:
            console.print(f"  {sentence}", highlight=False, markup=False)
        for problem, n in why.items():
            console.print(f"  because {n} events were kept out: {problem}", markup=False)
        console.print(
            "see `keel audit verify`; history written before the project had keys is kept "
            'by adopting it: `keel keys adopt --reason "..."`',
            highlight=False,
        )


def reset_trust(
    reason: str = typer.Option(
        ..., "--reason", help="what was restored and why: recorded, and shown by every answer"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Declare a deliberate restore: after the log was restored from an older copy, the
    checkpoint writer refuses to sign (the log no longer extends what was signed). This records
    a TrustReset signed by the admin key (KEEL_ADMIN_DIR) naming the checkpoints set aside,
    moves the default witness's notes aside (kept) and signs a checkpoint over the restored log.
    Every answer after it says so; other witnesses still hold the old checkpoints."""
    from keel.audit.reset_trust import reset_trust as reset
    from keel.signing import default_admin_dir

    with build(create=False) as app:
        rt = app.rt
        done = reset(rt, default_admin_dir(), reason)
    e = done.event
    doc = {
        "event_id": e.envelope.event_id,
        "at": e.envelope.occurred_at.isoformat(),
        "by": e.envelope.actor,
        "reason": e.reason,
        "refusal": e.refusal,
        "checkpoints_set_aside": [
            {"held_by": a.held_by, "origin": a.origin, "size": a.size, "root": a.root}
            for a in e.anchors
        ],
        "witness_notes_set_aside": len(done.set_aside),
        "checkpoint": done.progress.checkpoint,
    }
    if json_out:
        print_json(doc)
        return
    console.print(
        f"trust reset recorded ({e.envelope.event_id}), signed by the admin key: "
        f"{len(e.anchors)} checkpoint(s) set aside, {len(done.set_aside)} witness note(s) kept "
        f"under the witness's reset/; new checkpoint: {done.progress.checkpoint}",
        highlight=False,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command("reset-trust")(handled(reset_trust))
    app.command("verify")(handled(verify))
    app.command("checkpoint")(handled(checkpoint))
    app.command("prove")(handled(prove))
    app.command("rebuild")(handled(rebuild))
    app.add_typer(witness_cmd.app, name="witness")
