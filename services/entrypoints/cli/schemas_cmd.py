"""`keel schemas ...`: compatibility, release pins and code generation."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from keel.schemas.codegen import generate
from keel.schemas.compat import check_registry
from keel.schemas.registry import default_schema_dir, load_registry
from keel.schemas.release import check_released, release_all
from keel_services.entrypoints.cli.common import console, handled, print_json

app = typer.Typer(
    help="Event schemas: the single source of truth in schemas/events/.", no_args_is_help=True
)

DirOpt = typer.Option(None, "--dir", help="schemas/ directory (default: the repository's)")
# the library's module (this file moved to the application with the CLI: not beside it)
GENERATED = Path(__file__).resolve().parents[3] / "shared" / "keel" / "events" / "generated.py"


@app.command("check")
@handled
def check(
    json_out: bool = typer.Option(False, "--json", help="print one JSON document"),
    schema_dir: Path | None = DirOpt,
) -> None:
    """Every event schema's versions are FULL_TRANSITIVE compatible; released files are unedited."""
    root = schema_dir or default_schema_dir()
    registry = load_registry(root)
    problems = check_registry(registry)
    released, unreleased = check_released(registry, root / "events")
    ok = not any(problems.values()) and not released
    if json_out:
        print_json(
            {
                "ok": ok,
                "mode": "FULL_TRANSITIVE",
                "schemas": {
                    name: {
                        "versions": [v.version for v in registry.history(name)],
                        "problems": [p.as_dict() for p in problems[name]],
                    }
                    for name in registry.names()
                },
                "release_problems": [str(p) for p in released],
                "unreleased": unreleased,
            }
        )
    else:
        table = Table(title="schemas check (FULL_TRANSITIVE)")
        for col in ("schema", "versions", "verdict"):
            table.add_column(col)
        for name in registry.names():
            versions = ", ".join(f"v{v.version}" for v in registry.history(name))
            verdict = (
                Text("compatible", style="green")
                if not problems[name]
                else Text(f"{len(problems[name])} problem(s)", style="red")
            )
            table.add_row(name, versions, verdict)
        console.print(table)
        for plist in problems.values():
            for p in plist:
                console.print(f"[red]INCOMPATIBLE[/] {escape(str(p))}", markup=True)
        for r in released:
            console.print(f"[red]EDITED RELEASE[/] {escape(str(r))}", markup=True)
        if unreleased:
            console.print(f"unreleased (pin with `keel schemas release`): {', '.join(unreleased)}")
    if not ok:
        raise typer.Exit(1)


@app.command("list")
@handled
def list_(json_out: bool = typer.Option(False, "--json"), schema_dir: Path | None = DirOpt) -> None:
    """Every released version with its CRC-64-AVRO fingerprint."""
    registry = load_registry(schema_dir)
    rows = [
        {"schema": n, "version": v.version, "fingerprint": v.fingerprint_hex, "file": v.path.name}
        for n in registry.names()
        for v in registry.history(n)
    ]
    if json_out:
        print_json(rows)
        return
    table = Table(title="event schemas")
    for col in ("schema", "version", "fingerprint", "file"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["schema"]), f"v{r['version']}", str(r["fingerprint"]), str(r["file"]))
    console.print(table)


@app.command("release")
@handled
def release(schema_dir: Path | None = DirOpt) -> None:
    """Pin every new schema file's fingerprint in released.json (then it must never change)."""
    root = schema_dir or default_schema_dir()
    added = release_all(load_registry(root), root / "events")
    console.print(f"released: {', '.join(added) or 'nothing new'}")


@app.command("codegen")
@handled
def codegen(
    check_only: bool = typer.Option(False, "--check", help="exit 1 if the module is stale"),
) -> None:
    """Regenerate keel/events/generated.py from the latest schema of every event."""
    text = generate(load_registry())
    current = GENERATED.read_text(encoding="utf-8") if GENERATED.exists() else ""
    if check_only:
        if current != text:
            console.print("[red]stale:[/] run `keel schemas codegen`", markup=True)
            raise typer.Exit(1)
        console.print("generated.py is up to date")
        return
    GENERATED.write_text(text, encoding="utf-8")
    console.print(f"wrote {GENERATED}")
