"""What exists: `keel families`, `keel models list`, `keel datasets list`, `keel deployments
list`, `keel artifacts list`. Newest first, paginated (--offset/--limit), --json on all, full
IDs with --wide (always in JSON). Read from the views, brought up to the log's end first."""

from __future__ import annotations

from typing import Any

import typer

from keel.audit.reads import MAX_LIMIT
from keel_services.entrypoints.cli.answers import ident as _id
from keel_services.entrypoints.cli.answers import print_models
from keel_services.entrypoints.cli.answers import print_table as _table
from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.container import open_client

JsonOpt = typer.Option(False, "--json", help="print JSON (full IDs)")
WideOpt = typer.Option(False, "--wide", help="full IDs in the table")
OffsetOpt = typer.Option(0, "--offset", min=0, help="rows to skip (pagination)")
LimitOpt = typer.Option(50, "--limit", min=1, max=MAX_LIMIT, help="rows per page")
FamilyOpt = typer.Option(None, "--family", help="model family (default: the only one)")

models_app = typer.Typer(help="Trained models.", no_args_is_help=True)
datasets_app = typer.Typer(help="Ingested datasets.", no_args_is_help=True)
deployments_app = typer.Typer(help="Deployments per environment.", no_args_is_help=True)


def _dump(rows: list[Any]) -> list[dict[str, Any]]:
    """The client's typed rows as the documents the views hold (what --json prints)."""
    return [r.model_dump(mode="json", exclude_unset=True) for r in rows]


@handled
def families(json_out: bool = JsonOpt) -> None:
    """Model families with events in the log."""
    with open_client() as k:
        names = k.families()
    if json_out:
        print_json({"families": names})
        return
    for n in names:
        console.print(n, highlight=False)
    if not names:
        console.print("no families yet: ingest a dataset with `keel ingest`")


@models_app.command("list")
@handled
def models_list(
    family: str | None = FamilyOpt,
    env: str | None = typer.Option(None, "--env", help="only models deployed to ENV"),
    offset: int = OffsetOpt,
    limit: int = LimitOpt,
    wide: bool = WideOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Models of a family, newest first, with their latest eval metrics; with --env, the
    deployments of ENV (newest first) and the model each deployed."""
    with open_client() as k:
        fam = k.family(family)
        rows = _dump(k.models(fam, env, offset, limit))
    page = {"offset": offset, "limit": limit}
    if json_out:
        print_json({**page, "family": fam, "env": env, "models": rows})
        return
    print_models(fam, env, rows, page, wide)  # as the fast path prints it (fast.py)


@datasets_app.command("list")
@handled
def datasets_list(
    family: str | None = FamilyOpt,
    offset: int = OffsetOpt,
    limit: int = LimitOpt,
    wide: bool = WideOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Datasets of a family, newest first, with accepted and quarantined record counts."""
    with open_client() as k:
        fam = k.family(family)
        rows = _dump(k.datasets(fam, offset, limit))
    page = {"offset": offset, "limit": limit}
    if json_out:
        print_json({**page, "family": fam, "datasets": rows})
        return
    cells = [
        [
            _id(d["id"], wide),
            d["at"][:19],
            d.get("period") or "-",
            d.get("source") or "-",
            d["accepted"],
            d["quarantined"],
        ]
        for d in rows
    ]
    cols = ["dataset", "ingested", "period", "source", "accepted", "quarantined"]
    _table(f"{fam} datasets", cols, cells, page)


@deployments_app.command("list")
@handled
def deployments_list(
    env: str = typer.Option(..., "--env", help="environment, e.g. prod"),
    family: str | None = FamilyOpt,
    offset: int = OffsetOpt,
    limit: int = LimitOpt,
    wide: bool = WideOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Deployments of ENV, newest first: which model, from when until when, why (promotion,
    rollback, override) and by whom."""
    with open_client() as k:
        fam = k.family(family)
        rows = _dump(k.deployments(fam, env, offset, limit))
    page = {"offset": offset, "limit": limit}
    if json_out:
        print_json({**page, "family": fam, "env": env, "deployments": rows})
        return
    cells = [
        [
            _id(d["model_id"], wide),
            d["since"][:19],
            (d["until"] or "now")[:19],
            d["kind"] + (" (backdated)" if d.get("backdated") else ""),
            d.get("actor") or "-",
            d.get("reason") or "-",
        ]
        for d in rows
    ]
    cols = ["model", "since", "until", "kind", "actor", "reason"]
    _table(f"{fam} deployments to {env}", cols, cells, page)


@handled
def artifacts_list(
    kind: str | None = typer.Option(None, "--kind", help="e.g. dataset, model, eval_report"),
    offset: int = OffsetOpt,
    limit: int = LimitOpt,
    wide: bool = WideOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Artifacts recorded, newest first, with kind, size and parents."""
    with open_client() as k:
        rows = _dump(k.artifacts(kind, offset, limit))
    page = {"offset": offset, "limit": limit}
    if json_out:
        print_json({**page, "kind": kind, "artifacts": rows})
        return
    cells = [
        [
            _id(a["id"], wide),
            a["kind"],
            a["recorded_at"][:19],
            a.get("size", "-"),
            ", ".join(_id(p, wide) for p in a["parents"]) or "-",
        ]
        for a in rows
    ]
    _table("artifacts", ["artifact", "kind", "recorded", "bytes", "parents"], cells, page)
