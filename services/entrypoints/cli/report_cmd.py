"""`keel audit report`: the quarterly review pack."""

from __future__ import annotations

from pathlib import Path

import typer

from keel.errors import KeelError
from keel_services.entrypoints.cli.common import console, handled, print_json, user_time
from keel_services.entrypoints.container import open_client


def report(
    start: str = typer.Option(..., "--from", help="start of the period (ISO 8601, included)"),
    end: str = typer.Option(..., "--to", help="end of the period (ISO 8601, excluded)"),
    out: Path = typer.Option(..., "--out", help="FILE.html (self-contained) or FILE.pdf"),
    family: str | None = typer.Option(
        None, "--family", help="model family (default: the only one)"
    ),
    env: str | None = typer.Option(None, "--env", help="one environment (default: all)"),
    checkpoint: list[Path] | None = typer.Option(
        None,
        "--checkpoint",
        help="witness checkpoint file or directory to verify against as well; repeatable",
    ),
    json_out: bool = typer.Option(False, "--json", help="print the report's data as JSON"),
) -> None:
    """An auditor-ready review pack for a period: who served when, every decision with gates,
    margins and the incumbent's metrics, data and quarantine reasons, contract changes and
    reconciliation verdicts, what changed between consecutive models, charts of the gated
    metrics; verified like `keel audit verify`, with an inclusion proof for every listed event
    and signed by KEEL_IDENTITY (else audit), which needs the report-signing role (keel.toml
    `[identities.NAME] sign_reports = true`). A PDF's own bytes are signed too. Check it
    without Keel: `python tools/check_report.py FILE --keys keys.toml`
    (docs/review-pack-checker.md).
    Exit 1 when verification failed (the report is still written, and says so)."""
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise KeelError(f"--out {out}: give a .html or .pdf file", hint="e.g. --out q3.html")
    if out.is_symlink():  # checked before the work; written without following one anyway
        raise KeelError(
            f"--out {out}: a symlink; a report is not written through one",
            hint="give the path of a plain file, or remove the link first",
        )
    if not out.parent.is_dir():
        raise KeelError(
            f"--out {out}: the directory {out.parent} does not exist", hint="create it first"
        )
    a, b = user_time(start, "--from").isoformat(), user_time(end, "--to").isoformat()
    with open_client() as k:
        name = k.family(family)
        with console.status(f"verifying the log and building the {name} report"):
            pack = k.report(name, a, b, env, [str(c) for c in checkpoint or []])
            pack.write(out)
    doc = pack.document["report"]
    if json_out:
        print_json(
            {**pack.document, "written_to": str(out), "ok": pack.ok, "signed_by": pack.signed_by}
        )
    else:
        proofs = pack.document["evidence"]["proofs"]
        console.print(
            f"{out}: {len(doc['decisions'])} decisions, "
            f"{sum(len(v) for v in doc['timeline'].values())} serving intervals, "
            f"{len(doc['datasets'])} datasets, {len(proofs)} events with inclusion proofs; "
            + ("verified" if pack.ok else "VERIFICATION FAILED (the report says where)")
            + (f"; signed by {pack.signed_by}" if pack.signed_by else "; unsigned (no keys)"),
            highlight=False,
        )
    if not pack.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("report")(handled(report))
