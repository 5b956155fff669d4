"""The pack's two charts as inline SVG (matplotlib, no pyplot state): the serving timeline per
environment and the gated metrics over time. Byte-for-byte the same for the same document:
matplotlib's SVG ids are salted with a constant and its date metadata is left out."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

MARK = {"promoted": ("^", "#2e7d32"), "rejected": ("X", "#c62828")}
OTHER_MARK = ("o", "#6d4c41")
KIND_EDGE = {"promotion": "none", "rollback": "#e65100", "override": "#6a1b9a"}


def _figure(width: float, height: float) -> Any:
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


def _fmt(pattern: str) -> Any:
    from matplotlib import dates

    formatter: Callable[[str], Any] = dates.DateFormatter
    return formatter(pattern)


def _colour(model_id: str) -> str:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    r, g, b, _ = cmap(int(hashlib.sha256(model_id.encode()).hexdigest()[:4], 16) % 20)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def timeline(doc: dict[str, Any]) -> str:
    lanes = doc["timeline"]
    start, end = (datetime.fromisoformat(doc[k]) for k in ("from", "to"))
    fig = _figure(9.5, 0.9 + 0.7 * max(1, len(lanes)))
    ax = fig.add_subplot()
    for row, env in enumerate(lanes):
        for iv in lanes[env]:
            a = max(datetime.fromisoformat(iv["since"]), start)
            b = min(datetime.fromisoformat(iv["until"]) if iv["until"] else end, end)
            x0, x1 = _x(a), _x(b)
            ax.barh(
                row,
                x1 - x0,
                left=x0,
                height=0.6,
                color=_colour(iv["model_id"]),
                edgecolor=KIND_EDGE.get(iv["kind"], "black"),
                linewidth=2,
            )
            ax.text(
                x0 + (x1 - x0) / 2, row, iv["model_id"][:8], ha="center", va="center", fontsize=7
            )
    for d in doc["decisions"]:
        if d["env"] not in lanes:
            continue
        marker, colour = MARK.get(d["decision"], OTHER_MARK)
        row = list(lanes).index(d["env"])
        ax.plot(
            _x(datetime.fromisoformat(d["at"])),
            row - 0.42,
            marker=marker,
            color=colour,
            markersize=7,
            linestyle="none",
        )
    ax.set_yticks(range(len(lanes)), list(lanes))
    ax.set_ylim(len(lanes) - 0.2, -0.6)  # first environment on top, as in the tables
    ax.set_xlim(_x(start), _x(end))
    ax.xaxis.set_major_formatter(_fmt("%Y-%m-%d"))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_title(
        "who served when (bars: models; ▲ promoted, ✕ rejected; "
        "orange edge: rollback, purple: override)",
        fontsize=9,
    )
    return _svg(fig)


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
        ax.set_xlim(_x(start), _x(end))
        ax.xaxis.set_major_formatter(_fmt("%Y-%m"))
        ax.tick_params(labelsize=8)
        ax.set_title(f"{env}: {metric} at each gate decision", fontsize=9)
    fig.tight_layout()
    return _svg(fig)
