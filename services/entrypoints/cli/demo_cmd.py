"""`keel demo`: the retraining story on the embedded default, then the audit answers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.audit.reads import label_summary
from keel_services.entrypoints.cli.common import console, handled, print_json


def _answers(doc: dict[str, Any]) -> None:
    a = doc["answers"]
    s = a["serving_prod_at"]
    t = Table(title=f"1. Which model served prod on {s['at'][:10]}?", show_header=False)
    if s["serving"] is None:
        t.add_row("answer", s["message"])
    else:
        iv = s["serving"]
        for k in (
            "model_id",
            "since",
            "until",
            "kind",
            "manifest_id",
            "eval_report_id",
            "event_id",
        ):
            t.add_row(k, str(iv[k]))
    console.print(t)

    w = a["why_current_prod"]
    p = w["promotion"]
    t = Table(title=f"2. Why is {p['model_id'][:12]} serving prod, over {str(w['over'])[:12]}?")
    for col in ("gate", "metric", "value", "required", "margin", "passed"):
        t.add_column(col)
    for g in p["gates"]:
        value = "-" if g["value"] is None else f"{g['value']:.4f}"
        margin = "-" if g["margin"] is None else f"{g['margin']:+.4f}"
        t.add_row(
            g["name"],
            g["metric"],
            value,
            f"{g['op']} {g['threshold']}",
            margin,
            "yes" if g["passed"] else "NO",
        )
    console.print(t)
    console.print(f"  reason: {p['reason']}", highlight=False)
    console.print(
        f"  decided {p['at']} by {p['actor']}; eval report {p['eval_report_id'][:12]}",
        highlight=False,
    )
    t = Table(title="   metrics: new prod model vs the one it replaced")
    for col in ("metric", "prod model", "replaced", "delta"):
        t.add_column(col)
    for c in w["comparison"]:
        t.add_row(c["metric"], f"{c['model']:.4f}", f"{c['other']:.4f}", f"{c['delta']:+.4f}")
    console.print(t)

    d = a["staging_vs_prod"]
    t = Table(
        title=f"3. What changed from prod {d['a'][:12]} to staging {d['b'][:12]}?",
        show_header=False,
    )
    t.add_row(
        "datasets only in staging's training",
        ", ".join(x[:12] for x in d["datasets"]["only_b"]) or "none",
    )
    t.add_row(
        "datasets only in prod's training",
        ", ".join(x[:12] for x in d["datasets"]["only_a"]) or "none",
    )
    t.add_row(
        "code version",
        "same"
        if d["code_version"]["same"]
        else f"{d['code_version']['a'][:12]} -> {d['code_version']['b'][:12]}",
    )
    t.add_row("params changed", ", ".join(d["params"]) or "none")
    for m in d["metrics"]:
        t.add_row(f"eval {m['metric']}", f"{m['a']:.4f} -> {m['b']:.4f} ({m['delta']:+.4f})")
    ls = d.get("label_shift", {})
    for side, label in (("prod", ls.get("a")), ("staging", ls.get("b"))):
        if label:
            ((name, st),) = label.items()
            t.add_row(f"label {name} ({side} training)", label_summary(st))
    for f in d.get("feature_shift", [])[:3]:
        t.add_row(
            f"feature shift: {f['feature']}",
            f"{f['mean_a']:.3f} -> {f['mean_b']:.3f} ({f['shift_sd']:+.2f} sd)",
        )
    console.print(t)


@handled
def demo(
    workdir: Path | None = typer.Option(
        None, "--workdir", help="where to run (default: a new temp dir); must not hold a Keel home"
    ),
    json_out: bool = typer.Option(
        False, "--json", help="print one JSON document instead of tables"
    ),
    bus: str = typer.Option("", "--bus", help="event log URL, e.g. kafka://127.0.0.1:9092"),
    views: str = typer.Option("", "--views", help="views URL, e.g. redis://127.0.0.1:6379/0"),
) -> None:
    """Run a year of retraining on scikit-learn's breast-cancer data, then answer the audit
    questions: which model served prod on a past date, why the current prod model was
    promoted, and what changed between the staging and the prod model."""
    from keel_services.entrypoints.demo.story import run_story

    wd = workdir or Path(tempfile.mkdtemp(prefix="keel-demo-"))
    say = (
        (lambda msg: None) if json_out else (lambda msg: console.print(f"  {msg}", highlight=False))
    )
    if not json_out:
        console.print(f"[bold]keel demo[/] in {escape(str(wd))}", markup=True)
    doc = run_story(wd, say, bus=bus, views=views)
    if json_out:
        print_json(doc)
        return
    prod = [d for d in doc["deployments"] if d["env"] == "prod"]
    rejected = [p for p in doc["promotions"] if p["decision"] == "rejected"]
    console.print(
        f"\n{len(doc['artifacts'])} artifacts, {doc['events']} events, "
        f"{doc['quarantined']} records "
        f"quarantined, {len(prod)} prod deployments, {len(rejected)} rejections, "
        f"{doc['timings']['total_seconds']:.1f} s\n"
    )
    _answers(doc)
    console.print(
        f"\nexplore it: [bold]export KEEL_HOME={escape(doc['home'])} "
        f"KEEL_PROJECT={escape(doc['project'])} KEEL_KEYS_DIR={escape(doc['keys_dir'])}[/] "
        "then `keel audit tail`, `keel audit verify`, `keel audit report --from 2025-01-01 "
        "--to 2026-01-01 --out review.pdf`",
        markup=True,
    )
