"""The pack's two charts as inline SVG (matplotlib, no pyplot state): the serving timeline per
environment and the gated metrics over time. Byte-for-byte the same for the same document:
matplotlib's SVG ids are salted with a constant and its date metadata is left out."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from keel.extras import need

MARK = {"promoted": ("^", "#2e7d32"), "rejected": ("X", "#c62828")}
OTHER_MARK = ("o", "#6d4c41")
KIND_EDGE = {"promotion": "none", "rollback": "#e65100", "override": "#6a1b9a"}
DRIFT = "#f9a825"


def _figure(width: float, height: float) -> Any:
    need("report", "matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "keel-report"
    matplotlib.rcParams["font.family"] = "DejaVu Sans"
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or doctype


def _x(when: datetime) -> float:
    """matplotlib's date axis unit: days since its epoch, 1970-01-01 UTC."""
    return when.timestamp() / 86400.0


def _date_axis(ax: Any, start: datetime, end: datetime) -> None:
    """Ticks fit to the span (hours, days, months or years), each labelled as precisely as its
    spacing needs, so ticks a day apart never all read the same month."""
    from matplotlib import dates

    auto: Any = dates  # matplotlib.dates is untyped: its classes are called through Any
    locator = auto.AutoDateLocator(minticks=3, maxticks=8)
    formatter = auto.AutoDateFormatter(locator)
    # tick spacing in days -> label; below a day the label names the day too (spans cross
    # midnight, and "06:00" twice would read as the same tick)
    formatter.scaled = {
        365.0: "%Y",
        30.0: "%Y-%m",
        1.0: "%Y-%m-%d",
        1 / 24: "%m-%d %H:%M",
        1 / (24 * 60): "%m-%d %H:%M",
        1 / (24 * 3600): "%H:%M:%S",
    }
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(_x(start), _x(end))


def _colours(lanes: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """A distinct colour per model, in order of first appearance (colours hashed from the IDs
    could give two models of one pack the same colour, and the legend could not tell them
    apart)."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    order = list(dict.fromkeys(iv["model_id"] for lane in lanes.values() for iv in lane))
    out = {}
    for i, model_id in enumerate(order):
        r, g, b, _ = cmap(i % 20)
        out[model_id] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return out


def bars(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any], datetime, datetime]]:
    """(lane, interval, drawn from, drawn to) of each serving bar: within the period and never
    past `as_of`, the log's newest event (what serves "now" is known only up to then)."""
    start, end = (datetime.fromisoformat(doc[k]) for k in ("from", "to"))
    stop = min(datetime.fromisoformat(doc.get("as_of") or doc["to"]), end)
    out = []
    for row, lane in enumerate(doc["timeline"].values()):
        for iv in lane:
            a = max(datetime.fromisoformat(iv["since"]), start)
            b = min(datetime.fromisoformat(iv["until"]) if iv["until"] else stop, stop)
            if b > a:
                out.append((row, iv, a, b))
    return out


def timeline_figure(doc: dict[str, Any]) -> Any:
    from matplotlib.patches import Patch

    lanes = doc["timeline"]
    start, end = (datetime.fromisoformat(doc[k]) for k in ("from", "to"))
    colours = _colours(lanes)
    fig = _figure(9.5, 1.3 + 0.7 * max(1, len(lanes)) + 0.25 * ((len(colours) + 3) // 4))
    ax = fig.add_subplot()
    for row, iv, a, b in bars(doc):
        x0, x1 = _x(a), _x(b)
        ax.barh(
            row,
            x1 - x0,
            left=x0,
            height=0.6,
            color=colours[iv["model_id"]],
            edgecolor=KIND_EDGE.get(iv["kind"], "black"),
            linewidth=2,
        )
    rows = {env: i for i, env in enumerate(lanes)}
    for d in doc["decisions"]:
        if d["env"] not in rows:
            continue
        marker, colour = MARK.get(d["decision"], OTHER_MARK)
        at = _x(datetime.fromisoformat(d["at"]))
        ax.plot(at, rows[d["env"]] - 0.42, marker=marker, color=colour, markersize=7)
    for dr in doc.get("drifts", []):
        if dr["env"] in rows:
            at = _x(datetime.fromisoformat(dr["at"]))
            ax.plot(at, rows[dr["env"]] + 0.42, marker="D", color=DRIFT, markersize=6)
    as_of = datetime.fromisoformat(doc.get("as_of") or doc["to"])
    if start < as_of < end:
        ax.axvline(_x(as_of), color="#555", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(lanes)), list(lanes))
    ax.set_ylim(len(lanes) - 0.2, -0.6)  # first environment on top, as in the tables
    _date_axis(ax, start, end)
    ax.tick_params(axis="x", labelsize=8)
    # Models are named in a legend, not on their bars: bars minutes apart are too narrow for a
    # label, and labels placed on them overprint each other.
    if colours:
        ax.legend(
            handles=[Patch(color=c, label=m[:8]) for m, c in colours.items()],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncol=4,
            fontsize=7,
            frameon=False,
        )
    ax.set_title(
        "who served when (bars: models; ▲ promoted, ✕ rejected, ◆ drift; orange edge: "
        "rollback, purple: override; dotted: the log's newest event)",
        fontsize=9,
    )
    return fig


def timeline(doc: dict[str, Any]) -> str:
    return _svg(timeline_figure(doc))


def metrics(doc: dict[str, Any]) -> str:
    panels = [(env, m, pts) for env, series in doc["metrics"].items() for m, pts in series.items()]
    if not panels:
        return ""
    fig = _figure(9.5, 2.1 * len(panels))
    start, end = (datetime.fromisoformat(doc[k]) for k in ("from", "to"))
    for i, (env, metric, points) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, i)
        by_gate: dict[str, list[Any]] = {}
        for p in points:
            by_gate.setdefault(p[4], []).append(p)
        seen = set()
        for at, value, decision, _thr, _gate in points:
            if (at, value, decision) in seen:
                continue
            seen.add((at, value, decision))
            marker, colour = MARK.get(decision, OTHER_MARK)
            ax.plot(
                _x(datetime.fromisoformat(at)),
                value,
                marker=marker,
                color=colour,
                linestyle="none",
            )
        for gate, pts in sorted(by_gate.items()):
            thr = [(_x(datetime.fromisoformat(p[0])), p[3]) for p in pts if p[3]]
            if thr:
                xs, ys = zip(*thr, strict=True)
                ax.step(xs, ys, where="post", linestyle="--", color="#555", linewidth=1)
                ax.annotate(f"{gate} threshold", (xs[-1], ys[-1]), fontsize=7, color="#555")
        _date_axis(ax, start, end)
        ax.tick_params(labelsize=8)
        ax.set_title(f"{env}: {metric} at each gate decision", fontsize=9)
    fig.tight_layout()
    return _svg(fig)
