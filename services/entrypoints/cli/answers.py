"""How the inventory lists and `keel audit serving` print their answers: one place used by the
Typer commands (inventory_cmd.py, audit_cmd.py) and by the fast path (fast.py), so both print
the same bytes. Rich only: no Typer, no pydantic, no client."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from keel_services.entrypoints.cli.common import console, row

SERVING_ROWS = (
    "model_id",
    "since",
    "until",
    "kind",
    "reason",
    "event_id",
    "manifest_id",
    "promotion_event_id",
    "eval_report_id",
    "actor",
    "recorded_at",
)


def ident(value: str | None, wide: bool) -> str:
    if not value:
        return "-"
    return value if wide else value[:12]


def caption(n: int, page: dict[str, int]) -> str:
    more = f"; next page: --offset {page['offset'] + page['limit']}" if n == page["limit"] else ""
    return f"rows {page['offset'] + 1}-{page['offset'] + n}, newest first{more}" if n else "none"


def metrics_line(m: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in sorted(m.items())) or "-"


def print_table(
    title: str, columns: list[str], rows: list[list[Any]], page: dict[str, int]
) -> None:
    table = Table(title=title, caption=caption(len(rows), page))
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        row(table, *[str(x) for x in r])
    console.print(table)


def print_models(
    family: str, env: str | None, rows: list[dict[str, Any]], page: dict[str, int], wide: bool
) -> None:
    """`keel models list` as a table (rows as --json prints them)."""
    cols = ["model", "trained", "trainer", "metrics"]
    cells = [
        [
            ident(r["model_id"], wide),
            str(r["trained_at"])[:19],
            r["trainer"],
            metrics_line(r["metrics"]),
        ]
        for r in rows
    ]
    if env:
        cols += ["deployed", "kind"]
        cells = [[*c, r["deployed_at"][:19], r["kind"]] for c, r in zip(cells, rows, strict=True)]
    print_table(f"{family} models" + (f" deployed to {env}" if env else ""), cols, cells, page)


def say_reset(doc: dict[str, Any]) -> None:
    if doc.get("trust_reset"):
        console.print(doc["trust_reset"]["line"], style="yellow", highlight=False, markup=False)


def print_serving(doc: dict[str, Any]) -> None:
    """`keel audit serving` as text (doc as --json prints it)."""
    say_reset(doc)
    if doc["serving"] is None:
        console.print(doc["message"])
        return
    table = Table(title=f"{doc['env']} at {doc['at']}", show_header=False)
    for key in SERVING_ROWS:
        row(table, key, str(doc["serving"].get(key)))
    if doc["serving"].get("signed_by"):  # unsigned history the admin adopted (decision 0022)
        row(table, "signed by", str(doc["serving"]["signed_by"]))
    if doc["serving"].get("backdated"):
        row(table, "backdated", "yes: recorded after its business time (written into the past)")
    console.print(table)
