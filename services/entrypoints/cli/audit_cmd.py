"""`keel audit ...`: read the trail."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import Progress as RichProgress
from rich.table import Table

from keel.audit.projection import STATS
from keel.audit.projector import Progress, Projector
from keel.audit.projectors import projector_for
from keel.audit.reads import label_summary
from keel.audit.summary import summarize
from keel.bootstrap import Runtime
from keel.client import Client
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.log.port import LogRecord
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS, SCHEMAS_TOPIC
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from keel_services.entrypoints.cli.answers import print_serving
from keel_services.entrypoints.cli.answers import say_reset as _say_reset
from keel_services.entrypoints.cli.common import (
    console,
    err_console,
    handled,
    print_json,
    row,
    safe,
    user_time,
)
from keel_services.entrypoints.container import build, open_client

app = typer.Typer(
    help="The audit trail: what happened, when, by whom, and why.", no_args_is_help=True
)


def _schema_line(rec: LogRecord, json_out: bool) -> str:
    """The schemas topic holds writer schemas as JSON, keyed by fingerprint: not events."""
    try:
        schema = json.loads(rec.value)
        name = str(schema.get("name", "?")) if isinstance(schema, dict) else "?"
    except ValueError as exc:
        schema, name = None, f"not JSON: {exc}"
    if json_out:
        doc = {"topic": rec.topic, "offset": rec.offset, "fingerprint": rec.key, "name": name}
        return json.dumps({**doc, "schema": schema}, sort_keys=True)
    return f"{rec.offset:>8}  {'-':<20} {'(writer schema)':<26} {rec.key[:14]:<14} {name}"


def _line(codec: Codec, rec: LogRecord, json_out: bool) -> str:
    if rec.topic == SCHEMAS_TOPIC:
        return _schema_line(rec, json_out)
    try:
        event = decode_event(codec, rec.value)
    except CodecError as exc:
        # A bad record is reported where it sits and the tail goes on.
        if json_out:
            return json.dumps(
                {
                    "topic": rec.topic,
                    "offset": rec.offset,
                    "error": type(exc).__name__,
                    "reason": str(exc),
                }
            )
        head = f"{rec.offset:>8}  {'-':<10} {'-':<9} {'UNDECODABLE':<26} {rec.key[:14]:<14}"
        return f"{head} {rec.topic}@{rec.offset}: {exc}"
    env = event.envelope
    if json_out:
        doc: dict[str, Any] = {"topic": rec.topic, "offset": rec.offset, **event.to_avro()}
        return json.dumps(doc, default=_jsonable, sort_keys=True)
    when = env.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    head = f"{rec.offset:>8}  {when:<20} {env.event_type:<26} {env.subject[:14]:<14}"
    return f"{head} {summarize(event)}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@app.command("tail")
@handled
def tail(
    follow: bool = typer.Option(
        False, "--follow", "-f", help="keep printing new events (Ctrl-C stops)"
    ),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per line"),
    last: int = typer.Option(0, "--last", "-n", min=0, help="only the last N events (0: all)"),
    topic: list[str] = typer.Option(
        [],
        "--topic",
        help=f"only these topics ({', '.join(EVENT_TOPICS)}, also audit and schemas); repeatable",
    ),
    idle_exit: float = typer.Option(
        0.0, "--idle-exit", hidden=True, help="stop following after N idle seconds"
    ),
) -> None:
    """One readable line per event: offset, time, type, subject, key fields."""
    known = (*EVENT_TOPICS, AUDIT_TOPIC, SCHEMAS_TOPIC)
    unknown = [t for t in topic if t not in known]
    if unknown:
        raise KeelError(
            f"no topic named {', '.join(map(repr, unknown))}",
            hint=f"Keel's topics: {', '.join(known)}",
        )
    topics = topic or list(EVENT_TOPICS)
    with build(create=False) as app:
        rt = app.rt
        # Plain reads from positions, no consumer group: tailing never moves anyone's offsets,
        # and a read ends at the log's end, so the backlog is complete on every backend.
        backlog: deque[LogRecord] | list[LogRecord] = deque(maxlen=last) if last else []
        positions: dict[tuple[str, int], int] = {}
        for rec in rt.log.read(topics):
            backlog.append(rec)
            positions[rec.tp] = rec.offset + 1
        _emit(rt.codec, backlog, json_out)
        idle = 0.0
        try:
            while follow and not (idle_exit and idle >= idle_exit):
                new = list(rt.log.read(topics, positions))
                for rec in new:
                    positions[rec.tp] = rec.offset + 1
                _emit(rt.codec, new, json_out)
                idle = 0.0 if new else idle + 0.5
                if not new:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopped")


def _emit(codec: Codec, records: Iterable[LogRecord], json_out: bool) -> None:
    for rec in records:
        line = _line(codec, rec, json_out)
        sys.stdout.write((line if json_out else safe(line)) + "\n")
    sys.stdout.flush()


# -- the projector and the audit questions ----------------------------------------------------
JsonOpt = typer.Option(False, "--json", help="print JSON")
AtOpt = typer.Option(None, "--at", help="ISO 8601 time (default: now; no zone = UTC)")
AsOfOpt = typer.Option(
    None,
    "--as-of",
    help="answer as the system knew at this time: only events the log had recorded by then "
    "(business time is --at)",
)
FamilyOpt = typer.Option(None, "--family", help="model family (default: the only one there is)")


def _project(rt: Runtime, quiet: bool = True, batch: int | None = None) -> Progress:
    """Bring the persisted views up to the log's end (incremental: only new events); `batch`:
    events a batch throughout (None: the projector's own sizes)."""
    projector = projector_for(rt)
    if batch is not None:
        projector.batch_size = projector.catch_up_batch = batch
    if quiet:
        return projector.run()
    with _progress() as bar:
        task = bar.add_task("projecting", total=None)
        return projector.run(lambda p: bar.update(task, completed=p.applied))


def _progress() -> RichProgress:
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _as_of(rt: Runtime, snap: ViewStore, when: datetime) -> Projector:
    """A replay into `snap` of the events the log had recorded by `when`; forged ones left
    out."""
    return projector_for(rt, snap, checkpoints="none", as_of_ms=int(when.timestamp() * 1000))


def _known(as_of: str | None) -> datetime | None:
    return user_time(as_of) if as_of is not None else None


def _doc(answer: Any) -> dict[str, Any]:
    """A client answer as the document the views hold (what --json prints)."""
    doc: dict[str, Any] = answer.model_dump(mode="json", exclude_unset=True)
    return doc


def _with_reset(k: Client, doc: dict[str, Any]) -> dict[str, Any]:
    """An answer with the newest trust reset, when there was one (issue 33, item 3: a
    deliberate restore is shown by every answer after it)."""
    reset = k.trust_reset()
    return {**doc, "trust_reset": reset} if reset else doc


@app.command("project")
@handled
def project(
    json_out: bool = JsonOpt,
    batch: int | None = typer.Option(
        None,
        "--batch",
        min=1,
        help="Events a batch (one views write each) throughout. Default: 20,000 while far "
        "behind, 5,000 near the log's end (decision 0040); smaller batches hold less memory.",
    ),
) -> None:
    """Fold new events into the persisted views, extend the log's Merkle trees and publish a
    signed checkpoint when they grew (idempotent)."""
    with build(create=False) as app:
        rt = app.rt
        p = _project(rt, quiet=json_out, batch=batch)
        stats = rt.views.get(STATS) or {}
    doc = {**p.__dict__, "total_applied": stats.get("applied", 0)}
    print_json(doc) if json_out else console.print(doc)


@app.command("serving")
@handled
def serving(
    env: str = typer.Option(..., "--env"),
    at: str | None = AtOpt,
    family: str | None = FamilyOpt,
    as_of: str | None = AsOfOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The model serving ENV at a time, with its deployment, promotion and eval IDs."""
    with open_client() as k:
        doc = _with_reset(k, _doc(k.serving(k.family(family), env, user_time(at), _known(as_of))))
    if json_out:
        print_json(doc)
        return
    print_serving(doc)  # as the fast path prints it (fast.py)


@app.command("why")
@handled
def why(
    env: str = typer.Option(..., "--env"),
    at: str | None = AtOpt,
    family: str | None = FamilyOpt,
    as_of: str | None = AsOfOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Why this model serves ENV: deployment -> promotion -> eval -> model -> features/datasets."""
    with open_client() as k:
        doc = _with_reset(k, _doc(k.why(k.family(family), env, user_time(at), _known(as_of))))
    if json_out:
        print_json(doc)
        return
    _say_reset(doc)
    if doc["serving"] is None:
        console.print(doc["message"])
        return
    for i, step in enumerate(doc["steps"], start=1):
        console.print(f"[bold]{i}. {escape(step['step'])}[/]", markup=True)
        for k, v in step.items():
            if k != "step" and v not in (None, [], {}, ""):
                console.print(safe(f"   {k}: {readable(k, v)}"))


@app.command("skew")
@handled
def skew(
    env: str = typer.Option(..., "--env"),
    at: str | None = AtOpt,
    family: str | None = FamilyOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Training/serving skew: the last window of served features (recorded by `keel serve`)
    against the serving model's training features; per feature PSI and the test its kind
    calls for (chi-square of value frequencies for flags and counts, KS for continuous ones),
    thresholds from keel.toml ([families.F.skew]). Drift beyond them is recorded
    (DriftDetected, shown by `keel audit why`); exit 1 when a feature drifts; a window too
    small to judge says so."""
    with open_client(acting=True) as k:  # a drift is recorded
        doc = k.skew(k.family(family), env, user_time(at) if at else None)
    if json_out:
        print_json(doc)
    else:
        w = doc["window"]
        console.print(
            f"{doc['family']}/{doc['env']} model {doc['model_id'][:12]}: {w['requests']} "
            f"request(s) {w['window_start']} .. {w['window_end']}",
            highlight=False,
        )
        table = Table("feature", "kind", "PSI", "test", "statistic", "p-value", "drift")
        for f in doc["features"]:
            table.add_row(
                f["feature"],
                f["kind"],
                f"{f['psi']:.3f}",
                f["test"],
                f"{f['statistic']:.3f}",
                f"{f['pvalue']:.2g}",
                "DRIFT" if f["drifting"] else (f["note"] or ""),
            )
        console.print(table)
        if doc["note"]:
            console.print(doc["note"], highlight=False)
        if doc["drifting"]:
            console.print(
                f"drifting: {', '.join(doc['drifting'])} (recorded: {doc['drift_event_id']})",
                highlight=False,
            )
    if doc["drifting"]:
        raise typer.Exit(1)


def _gate_line(g: dict[str, Any]) -> str:
    margin = "" if g.get("margin") is None else f", margin {g['margin']:+.4f}"
    verdict = "passed" if g.get("passed") else "FAILED"
    return f"{g['metric']} {g.get('value')} {g['op']} {g['threshold']} ({verdict}{margin})"


def readable(key: str, value: Any) -> str:
    """One line for a value of an answer: gates as sentences, lists joined, mappings as
    key=value, never a Python repr."""
    if key == "gates" and isinstance(value, list):
        return "; ".join(_gate_line(g) for g in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={readable(k, v)}" for k, v in value.items())
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return " | ".join(readable(key, v) for v in value)
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@app.command("why-promoted")
@handled
def why_promoted_cmd(
    model: str = typer.Argument(..., help="model artifact ID (or prefix)"),
    over: str | None = typer.Option(
        None,
        "--over",
        help="compare with this model, ID or prefix (default: the one it replaced there)",
    ),
    env: str | None = typer.Option(
        None,
        "--env",
        help="only this environment's promotion, e.g. prod (default: every environment the "
        "model was promoted to, one block each)",
    ),
    as_of: str | None = AsOfOpt,
    json_out: bool = JsonOpt,
) -> None:
    """The promotion record of MODEL in each environment (or in --env): its gates, who asked,
    the reviews, and the metrics beside the model it replaced there."""
    with open_client() as k:
        doc = _doc(k.why_promoted(model, env, over, _known(as_of)))
    if json_out:
        print_json(doc)
        return
    blocks = doc["environments"] if env is None else [doc]
    for i, block in enumerate(blocks):
        if i:
            console.print()
        console.print(safe(f"== {block['promotion']['env']} =="), highlight=False)
        _promotion_block(block)
    for n in doc.get("not_promoted", []):
        console.print()
        console.print(safe(f"{n['env']}: {n['reason']}"), highlight=False)


def _promotion_block(doc: dict[str, Any]) -> None:
    """One environment's promotion of a model, as `why-promoted` prints it."""
    p = doc["promotion"]
    console.print(safe(f"{p['model_id']} promoted to {p['env']} at {p['at']} by {p['actor']}"))
    console.print(safe(f"reason: {p['reason']}"))
    console.print(safe(f"gates: {readable('gates', p['gates'])}"))
    asked = p.get("trigger") or "pipeline"
    console.print(
        safe(f"asked by: {asked}" + (f" ({p['note']})" if p.get("note") else "")),
        highlight=False,
    )
    if p.get("policy_version"):
        console.print(safe(f"policy version: {p['policy_version']}"), highlight=False)
    for r in doc.get("reviews", []):
        what = {"pending": "waited for approval", "approved": "APPROVED", "declined": "DECLINED"}
        console.print(
            safe(f"{r['at'][:19]} {what[r['decision']]} by {r['actor']}: {r['reason']}"),
            highlight=False,
        )
    if not doc.get("over"):
        console.print(safe(f"no model to compare with: nothing else served {p['env']} then"))
        return
    table = Table(title=safe(f"{p['env']}: metrics vs {str(doc['over'])[:12]}"))
    for c in ("metric", "model", "other", "delta"):
        table.add_column(c)
    for c in doc.get("comparison", []):
        row(table, c["metric"], str(c["model"]), str(c["other"]), str(c["delta"]))
    console.print(table)


@app.command("diff")
@handled
def diff_cmd(
    a: str = typer.Argument(..., help="model ID or prefix (e.g. the one that worked in staging)"),
    b: str = typer.Argument(..., help="model ID or prefix (e.g. the one misbehaving in prod)"),
    top: int = typer.Option(5, min=1, max=100, help="how many shifted features to list"),
    as_of: str | None = AsOfOpt,
    json_out: bool = JsonOpt,
) -> None:
    """What changed between two models: data, features, code, params, contracts, metrics."""
    with open_client() as k:
        doc = _doc(k.diff(a, b, top, _known(as_of)))
        ida, idb = doc["a"], doc["b"]
    if json_out:
        print_json(doc)
        return
    table = Table(title=f"{ida[:12]} -> {idb[:12]}", show_header=False)
    row(table, "datasets only in A", ", ".join(x[:12] for x in doc["datasets"]["only_a"]) or "none")
    row(table, "datasets only in B", ", ".join(x[:12] for x in doc["datasets"]["only_b"]) or "none")
    row(table, "shared datasets", str(doc["datasets"]["shared"]))
    for side in ("a", "b"):
        t = doc["trained"][side]
        mark = " (backdated)" if t.get("backdated") else ""
        row(
            table,
            f"{side.upper()} trained / recorded",
            f"{str(t.get('trained_at'))[:19]} / {str(t.get('recorded_at'))[:19]}{mark}",
        )
    row(
        table,
        "code version",
        "same"
        if doc["code_version"]["same"]
        else f"{doc['code_version']['a'][:12]} -> {doc['code_version']['b'][:12]}",
    )
    row(
        table,
        "params changed",
        ", ".join(f"{k}: {v['a']} -> {v['b']}" for k, v in doc["params"].items()) or "none",
    )
    row(
        table,
        "contracts",
        f"{', '.join(doc['contracts']['a'])} -> {', '.join(doc['contracts']['b'])}",
    )
    for m in doc["metrics"]:
        row(
            table,
            f"eval {m['metric']}",
            f"{m['a']} -> {m['b']} ({m['delta']:+.4f})"
            if m["delta"] is not None
            else f"{m['a']} -> {m['b']}",
        )
    labels = doc.get("label_shift") or {}
    if labels.get("a") and labels.get("b"):
        ((name, la),) = labels["a"].items()
        lb = labels["b"][name]
        row(table, f"label {name}", f"{label_summary(la)} -> {label_summary(lb)}")
    for f in doc.get("feature_shift", []):
        row(
            table,
            f"shift {f['feature']}",
            f"{f['mean_a']:.4g} -> {f['mean_b']:.4g} ({f['shift_sd']:+.2f} sd)",
        )
    console.print(table)


@app.command("history")
@handled
def history(
    family: str | None = FamilyOpt,
    offset: int = typer.Option(0, min=0, help="rows to skip (pagination)"),
    limit: int = typer.Option(50, min=1, max=1000, help="rows per page"),
    as_of: str | None = AsOfOpt,
    wide: bool = typer.Option(False, "--wide", help="full model IDs"),
    json_out: bool = JsonOpt,
) -> None:
    """Registry history, oldest first: every gate decision (promoted, rejected, pending
    approval) and every person's review (approved, declined), with who and why."""
    with open_client() as k:
        rows = [_doc(d) for d in k.history(k.family(family), offset, limit, _known(as_of))]
        page = _with_reset(k, {"offset": offset, "limit": limit, "decisions": rows})
    if json_out:
        print_json(page)
        return
    _say_reset(page)
    table = Table(title="registry history")
    for c in ("at", "recorded", "env", "model", "decision", "by", "reason"):
        table.add_column(c, overflow="fold")
    for d in rows:
        recorded = str(d.get("recorded_at", ""))[:19] + (
            " (backdated)" if d.get("backdated") else ""
        )
        trigger = d.get("trigger")
        decision = d["decision"] + (f" ({trigger})" if trigger and trigger != "pipeline" else "")
        model = d["model_id"] if wide else d["model_id"][:12]
        reason = d["reason"] + (f" -- {d['note']}" if d.get("note") else "")
        by = d["actor"] + (f" ({d['signed_by']})" if d.get("signed_by") else "")
        row(table, d["at"][:19], recorded, d["env"], model, decision, by, reason)
    console.print(table)


@handled
def replay(
    as_of: str = typer.Option(..., "--as-of", help="rebuild the views as of this time (ISO 8601)"),
    out: Path | None = typer.Option(
        None, "--out", help="SQLite file for the snapshot (default: in KEEL_HOME)"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Rebuild every view as of TIME from the log alone (exact: filtered on occurred_at), into a
    separate snapshot; the current views are untouched."""
    when = user_time(as_of)
    with build(create=False) as app:
        rt = app.rt
        path = out or rt.settings.home / f"views-as-of-{when.strftime('%Y%m%dT%H%M%SZ')}.db"
        if path.exists():
            raise KeelError(f"{path} exists", hint="remove it or give --out")
        snap = SqliteViewStore(path)
        projector = _as_of(rt, snap, when)
        with _progress() as bar:
            task = bar.add_task(f"replaying as of {when.isoformat()}", total=None)
            p = projector.run(lambda pr: bar.update(task, completed=pr.applied))
        snap.close()
    doc = {
        "as_of": when.isoformat(),
        "snapshot": str(path),
        "applied": p.applied,
        "after_as_of": p.after_as_of,
    }
    if json_out:
        print_json(doc)
    else:
        console.print(f"{p.applied:,} events up to {when.isoformat()} -> {path}")
        console.print(f"{p.after_as_of:,} later events left out")


from keel_services.entrypoints.cli import report_cmd, trail_cmd  # noqa: E402  (verify, checkpoint, prove, rebuild, report)

trail_cmd.register(app)
report_cmd.register(app)

from keel_services.entrypoints.cli import tokens_cmd  # noqa: E402

app.add_typer(tokens_cmd.app, name="tokens")
