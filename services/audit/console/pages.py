"""What each console page shows, as plain data read from the audit views: bounded index ranges
and document reads, never a replay of the log, so a page costs the same on a million events
as on the demo. The routes (routes.py) render these with the templates."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from keel.audit import keys
from keel.audit.reads import Reads
from keel.errors import KeelError
from keel.report.content import quarantine_reasons
from keel.timeparse import CLOCK_SKEW_MS
from keel.views.port import ViewStore

BARS = 300  # deployments per lane in one window; beyond it the page says so
MARKS = 500  # decision marks in one window
KIND_COLOURS = {
    "raw": "#8d6e63",
    "dataset": "#1565c0",
    "quarantine_batch": "#c62828",
    "feature_set": "#2e7d32",
    "feature_stats": "#66bb6a",
    "model": "#6a1b9a",
    "eval_report": "#ef6c00",
    "deployment_manifest": "#00838f",
}


def ms(at: datetime) -> float:
    return at.timestamp() * 1000.0


def colour(model_id: str) -> str:
    """A stable colour per model: the same model is the same colour on every page."""
    h = int(hashlib.sha256(model_id.encode()).hexdigest()[:6], 16)
    return f"hsl({h % 360}, 55%, {62 + (h >> 9) % 14}%)"


def default_window(views: ViewStore, family: str, envs: list[str]) -> tuple[datetime, datetime]:
    """A year up to a month past the newest deployment (now, when nothing was deployed)."""
    newest = 0.0
    for env in envs:
        last = views.index_range(keys.serving(family, env), limit=1, reverse=True)
        if last:
            newest = max(newest, last[0][1])
    end = datetime.fromtimestamp(newest / 1000, UTC) if newest else datetime.now(UTC)
    return end - timedelta(days=365), end + timedelta(days=31)


def lane(
    views: ViewStore,
    family: str,
    env: str,
    start: datetime,
    end: datetime,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The bars of one environment: its deployments during the window, at most BARS."""
    docs, more = Reads(views).deployments_during(family, env, start, end, as_of, BARS)
    bars = [
        {**d, "colour": colour(d["model_id"]), "backdated": bool(d.get("backdated"))} for d in docs
    ]
    return {"env": env, "bars": bars, "truncated": more}


def timeline(
    views: ViewStore,
    family: str,
    envs: list[str],
    start: datetime,
    end: datetime,
    at: datetime | None,
    as_of: datetime | None,
) -> dict[str, Any]:
    lanes = [lane(views, family, env, start, end, as_of) for env in envs]
    decided, more = Reads(views).decisions_during(family, start, end, as_of, MARKS)
    cursor = (
        {env: Reads(views).serving(family, env, at, as_of)["serving"] for env in envs}
        if at is not None
        else {}
    )
    return {
        "family": family,
        "from": start,
        "to": end,
        "at": at,
        "as_of": as_of,
        "lanes": lanes,
        "marks": decided,
        "marks_truncated": more,
        "cursor": cursor,
        "skew_ms": CLOCK_SKEW_MS,
    }


def why(
    views: ViewStore, read_bytes: Any, family: str, env: str, at: datetime, as_of: datetime | None
) -> dict[str, Any]:
    """`keel audit why` with what an on-call engineer then opens: the eval report (calibration,
    metrics beside the incumbent's), each feature set's stats, each dataset's quarantine."""
    doc = Reads(views).why(family, env, at, as_of)
    steps = {s["step"]: s for s in doc.get("steps", [])}
    out: dict[str, Any] = {**doc, "by_step": steps, "eval": None, "features": [], "data": []}
    ev = steps.get("eval_report")
    if ev:
        report = json.loads(read_bytes(ev["eval_report_id"]))
        out["eval"] = {**ev, "calibration": report.get("calibration") or [], "task": report["task"]}
    decision = steps.get("promotion") or steps.get("overridden decision")
    if decision:
        full = views.get(keys.decision(decision["event_id"])) or {}
        out["incumbent"] = {
            "model_id": full.get("incumbent_model_id"),
            "metrics": full.get("incumbent_metrics") or {},
        }
    fs = steps.get("feature_sets") or {}
    for f in fs.get("feature_sets", []):
        stats = json.loads(read_bytes(f["stats_id"]).splitlines()[0]) if f.get("stats_id") else {}
        out["features"].append({**f, "stats": stats})
    for d in views.get_many([keys.dataset(i) for i in fs.get("datasets", [])]):
        if d:
            out["data"].append(
                {**d, "reasons": quarantine_reasons(read_bytes, d.get("quarantine_batch_id"))}
            )
    return out


LINEAGE_ROWS = 40  # artifacts stacked per column; a depth with more gets more columns
COL_W, ROW_H = 230, 34


def lineage_graph(nodes: list[Any], root: str) -> dict[str, Any]:
    """Columns by depth (ancestors left, descendants right), edges parent -> child, laid out
    for an SVG. A depth with more than LINEAGE_ROWS artifacts wraps into several columns, so a
    few hundred artifacts stay a screen or two high instead of one column metres long."""
    columns: dict[int, list[Any]] = {}
    seen: set[str] = set()
    for n in nodes:  # an artifact reached twice is drawn once, where it was reached first
        if n.id not in seen:
            seen.add(n.id)
            columns.setdefault(n.depth, []).append(n)
    place: dict[str, tuple[float, float]] = {}
    x = 20
    for depth in sorted(columns):
        ordered = sorted(columns[depth], key=lambda n: (n.kind, n.id))
        for i, n in enumerate(ordered):
            place[n.id] = (x + (i // LINEAGE_ROWS) * COL_W, 20 + (i % LINEAGE_ROWS) * ROW_H)
        x += COL_W * ((len(ordered) - 1) // LINEAGE_ROWS + 1) + 30
    edges = []
    for n in nodes:
        if n.via and n.via in place and n.id in place:
            a, b = (n.via, n.id) if n.depth > 0 else (n.id, n.via)
            edges.append({"from": place[a], "to": place[b]})
    rows = min(LINEAGE_ROWS, max((len(c) for c in columns.values()), default=1))
    return {
        "root": root,
        "nodes": [
            {
                "id": n.id,
                "kind": n.kind,
                "depth": n.depth,
                "x": place[n.id][0],
                "y": place[n.id][1],
                "colour": KIND_COLOURS.get(n.kind, "#546e7a"),
            }
            for c in columns.values()
            for n in c
        ],
        "edges": edges,
        "width": x + 20,
        "height": 40 + ROW_H * rows,
        "kinds": sorted({n.kind for n in nodes}),
        "colours": KIND_COLOURS,
    }


def health(views: ViewStore) -> dict[str, Any]:
    stats = views.get(keys.STATS) or {}
    trees = views.get(keys.TREES) or {}
    checkpointed = views.get(keys.CHECKPOINTED) or {}
    sizes = {tp: int(doc.get("size", 0)) for tp, doc in trees.items()}
    return {
        "applied": stats.get("applied", 0),
        "by_type": dict(sorted((stats.get("by_type") or {}).items())),
        "trees": [
            {"tree": tp, "size": sizes[tp], "checkpointed": checkpointed.get(tp, 0)}
            for tp in sorted(sizes)
        ],
        "uncovered": sum(max(0, sizes[tp] - checkpointed.get(tp, 0)) for tp in sizes),
        "trust_reset": Reads(views).trust_reset(),  # a declared restore, if any
    }


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX = re.compile(r"^[0-9a-f]{8,64}$")


def search(
    views: ViewStore, resolve: Any, q: str, families: list[str], envs: dict[str, list[str]]
) -> list[dict[str, str]]:
    """What `q` may name: an artifact (ID prefix), an event (its UUID), a family, an
    environment, a date. Each hit is a label and the console page that answers it."""
    q = q.strip()
    hits: list[dict[str, str]] = []
    low = q.lower()
    if HEX.match(low):
        try:
            aid = resolve(low)
            art = views.get(keys.artifact(aid)) or {}
            hits.append({"label": f"{art.get('kind', 'artifact')} {aid}", "href": f"lineage/{aid}"})
            if art.get("kind") == "model":
                hits.append({"label": f"model {aid[:12]}: where it served", "href": f"model/{aid}"})
        except KeelError as exc:  # an unknown or ambiguous prefix: said, not raised
            hits.append({"label": f"no artifact: {exc}", "href": ""})
    if UUID.match(low):
        dep = views.get(keys.deployment(low))
        if dep:
            hits.append(
                {
                    "label": f"deployment of {dep['model_id'][:12]} to {dep['env']} "
                    f"at {dep['since'][:19]}",
                    "href": f"why/{dep['family']}/{dep['env']}?at={quote(dep['since'])}",
                }
            )
        dec = views.get(keys.decision(low))
        if dec:
            hits.append(
                {
                    "label": f"{dec['decision']} {dec['model_id'][:12]} for {dec['env']} "
                    f"at {dec['at'][:19]}",
                    "href": f"model/{dec['model_id']}",
                }
            )
        ev = views.get(keys.event(low))
        if ev:
            hits.append({"label": f"{ev['type']} {low}", "href": f"event/{low}"})
    for f in families:
        if low and low in f.lower():
            hits.append({"label": f"family {f}: serving timeline", "href": f"timeline/{f}"})
        for env in envs.get(f, []):
            if low == env.lower():
                hits.append({"label": f"{f}/{env}: why it serves now", "href": f"why/{f}/{env}"})
    if re.match(r"^\d{4}-\d{2}-\d{2}", q):
        for f in families:
            hits.append({"label": f"{f} at {q}", "href": f"timeline/{f}?at={quote(q)}"})
    return hits


def model_page(views: ViewStore, model_id: str) -> dict[str, Any]:
    """A model's facts, evaluations and every registry decision about it."""
    model = views.get(keys.model(model_id)) or {"id": model_id}
    wanted = [keys.decision(e) for e in model.get("decisions", [])]
    return {"model": model, "decisions": [d for d in views.get_many(wanted) if d]}


WIDTH, LEFT, LANE = 1100, 90, 56
SYMBOLS = {
    "promoted": ("\u25b2", "#2e7d32"),
    "rejected": ("\u2716", "#c62828"),
    "pending": ("\u25c6", "#ef6c00"),
    "approved": ("\u2714", "#2e7d32"),
    "declined": ("\u2718", "#c62828"),
}
KIND_EDGE = {"rollback": "#e65100", "override": "#6a1b9a"}


def ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """About a dozen date ticks: days, months or years by span."""
    days = (end - start).total_seconds() / 86400
    out = []
    if days > 3 * 365:
        t = datetime(start.year + 1, 1, 1, tzinfo=UTC)
        step = max(1, int(days / 365 / 12) + 1)
        while t < end:
            out.append((t, str(t.year)))
            t = t.replace(year=t.year + step)
    elif days > 45:
        step = max(1, int(days / 30 / 12) + 1)
        y, m = start.year, start.month + 1
        while True:
            y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
            t = datetime(y, m, 1, tzinfo=UTC)
            if t >= end:
                break
            out.append((t, t.strftime("%Y-%m")))
            m += step
    else:
        step_d = max(1.0, days / 12)
        t = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        while t < end:
            out.append((t, t.strftime("%m-%d")))
            t += timedelta(days=step_d)
    return out


def svg_timeline(data: dict[str, Any]) -> dict[str, Any]:
    """Geometry of the timeline: bars per lane, decision marks above their lane, date ticks and
    the time cursor, in pixels; every bar and mark links to the page that explains it."""
    start, end = data["from"], data["to"]
    span = ms(end) - ms(start)
    inner = WIDTH - LEFT - 20

    def x(when: str | datetime) -> float:
        t = datetime.fromisoformat(when) if isinstance(when, str) else when
        return LEFT + max(0.0, min(1.0, (ms(t) - ms(start)) / span)) * inner

    family = data["family"]
    rows = {ln["env"]: i for i, ln in enumerate(data["lanes"])}
    bars, marks_out = [], []
    for ln in data["lanes"]:
        y = 30 + rows[ln["env"]] * LANE
        for b in ln["bars"]:
            x0, x1 = x(b["since"]), x(b["until"] or end)
            if x1 <= LEFT and b["until"] is not None:
                continue
            bars.append(
                {
                    "x": x0,
                    "y": y,
                    "w": max(2.0, x1 - x0),
                    "h": 26,
                    "colour": b["colour"],
                    "edge": KIND_EDGE.get(b["kind"], "#37474f"),
                    "kind": b["kind"],
                    "backdated": b["backdated"],
                    "label": b["model_id"][:8] if x1 - x0 > 60 else "",
                    "href": f"why/{family}/{ln['env']}?at={quote(b['since'])}",
                    "title": f"{b['model_id'][:12]} in {ln['env']} from {b['since'][:19]}"
                    f" ({b['kind']}{', backdated' if b['backdated'] else ''}) by {b['actor']}",
                    "env": ln["env"],
                    "model_id": b["model_id"],
                }
            )
    for d in data["marks"]:
        if d["env"] not in rows:
            continue
        sym, col = SYMBOLS.get(d["decision"], ("\u25cf", "#555"))
        marks_out.append(
            {
                "x": x(d["at"]),
                "y": 30 + rows[d["env"]] * LANE - 4,
                "symbol": sym,
                "colour": col,
                "decision": d["decision"],
                "href": f"model/{d['model_id']}",
                "title": f"{d['decision']} {d['model_id'][:12]} for {d['env']} at {d['at'][:19]}"
                f" by {d['actor']}: {d['reason']}",
            }
        )
    height = 30 + LANE * len(rows) + 24
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "inner": inner,
        "lanes": [{"env": e, "y": 30 + i * LANE + 17} for e, i in rows.items()],
        "bars": bars,
        "marks": marks_out,
        "ticks": [{"x": x(t), "label": label} for t, label in ticks(start, end)],
        "cursor": x(data["at"]) if data["at"] is not None else None,
        "from_ms": ms(start),
        "to_ms": ms(end),
    }
