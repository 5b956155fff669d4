"""`keel artifacts ...`: put, get, cat, show, lineage, verify."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from keel.artifacts.ids import ArtifactSpec, stream_digest
from keel.artifacts.recording import record
from keel.artifacts.store import check_kind
from keel.errors import KeelError
from keel_services.entrypoints.cli.common import console, handled, parse_params, print_json, safe
from keel_services.entrypoints.container import build

app = typer.Typer(
    help="Immutable, content-addressed artifacts and their lineage.", no_args_is_help=True
)

# Files made outside Keel have no producing code to digest; their ID rests on their content.
EXTERNAL_CODE_VERSION = "external"

JsonOpt = typer.Option(False, "--json", help="print JSON instead of a table")


@app.command("put")
@handled
def put(
    file: Path = typer.Argument(..., help="the file to store"),
    kind: str = typer.Option(
        ..., "--kind", help="what it is: prompt_template, dataset, model, ..."
    ),
    parent: list[str] = typer.Option(
        [], "--parent", help="ID (or >= 8-char prefix) it derives from; repeatable"
    ),
    param: list[str] = typer.Option([], "--param", help="K=V that identifies it; repeatable"),
    json_out: bool = JsonOpt,
) -> None:
    """Store a file made outside Keel; prints its ID. The same call twice prints the same ID."""
    check_kind(kind)
    params = parse_params(param)
    digest = _digest_of_regular_file(file)
    with build() as app:
        rt = app.rt
        parents = [rt.artifacts.resolve(p) for p in parent]
        spec = ArtifactSpec(kind, EXTERNAL_CODE_VERSION, params, parents, content_digest=digest)
        info, created = record(
            rt.artifacts,
            spec,
            file,
            rt.publish,
            service="cli",
            actor=rt.settings.who(),
            correlation_id=str(uuid.uuid4()),
        )
    if json_out:
        print_json({**info.as_dict(), "created": created})
    else:
        console.print(info.id)


def _digest_of_regular_file(file: Path) -> str:
    """The file's digest, read without following a symbolic link: a link would store bytes
    from wherever it points, under the name the user gave. The store checks the bytes it reads
    against this digest, so a file swapped after this point is refused there."""
    if file.is_symlink():
        raise KeelError(
            f"{file} is a symbolic link; Keel stores only a file given by its own path",
            hint="give the file it points to if that is the one you mean: "
            f"{os.path.realpath(file)}",
        )
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeelError(
            f"{file} is not a readable file: {exc.strerror or exc}",
            hint="give the path of an existing file",
        ) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise KeelError(f"{file} is not a regular file", hint="give the path of a file")
        return stream_digest(f)[0]


@app.command("get")
@handled
def get(
    ref: str = typer.Argument(..., help="artifact ID or unique prefix (>= 8 hex chars)"),
    out: Path = typer.Option(..., "--out", "-o", help="the file to write"),
    force: bool = typer.Option(
        False, "--force", help="replace a different file (or a link) already at --out"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Write an artifact's bytes to a file, verified against its digest. Never writes through a
    symbolic link at --out; a different existing file is replaced only with --force."""
    from keel.artifacts.export import write_artifact

    with build(create=False) as app:
        rt = app.rt
        info = rt.artifacts.info(ref)
        state = write_artifact(rt.artifacts, info.id, out, replace=force)
    if json_out:
        print_json({"id": info.id, "digest": info.digest, "path": str(out), "state": state})
    else:
        console.print(f"{state} {out} ({info.kind} {info.id[:16]})", highlight=False, markup=False)


@app.command("cat")
@handled
def cat(
    ref: str = typer.Argument(..., help="artifact ID or unique prefix (>= 8 hex chars)"),
) -> None:
    """Write an artifact's bytes to stdout, once verified against its digest."""
    from keel.artifacts.export import cat_artifact

    with build(create=False) as app:
        rt = app.rt
        cat_artifact(rt.artifacts, ref)


@app.command("show")
@handled
def show(
    ref: str = typer.Argument(..., help="artifact ID or unique prefix (>= 8 hex chars)"),
    json_out: bool = JsonOpt,
) -> None:
    """An artifact's kind, digest, size, params, code version and parents."""
    with build(create=False) as app:
        rt = app.rt
        info = rt.artifacts.info(ref)
    if json_out:
        print_json(info.as_dict())
        return
    table = Table(show_header=False, title=f"artifact {info.id[:16]}")
    for key, value in info.as_dict().items():
        table.add_row(key, "\n".join(value) if isinstance(value, list) else str(value))
    console.print(table)


@app.command("lineage")
@handled
def lineage(
    ref: str = typer.Argument(..., help="artifact ID or unique prefix"),
    direction: str = typer.Option("both", help="up (ancestors), down (descendants) or both"),
    depth: int = typer.Option(10, min=1, max=100, help="how many hops at most"),
    limit: int = typer.Option(50, min=1, max=1000, help="rows per page"),
    offset: int = typer.Option(0, min=0, help="rows to skip (pagination)"),
    json_out: bool = JsonOpt,
) -> None:
    """Ancestors (negative depth) and descendants (positive depth), breadth first."""
    if direction not in ("up", "down", "both"):
        raise KeelError(f"--direction {direction!r} is not up, down or both")
    with build(create=False) as app:
        rt = app.rt
        root = rt.artifacts.info(ref)
        nodes = rt.artifacts.lineage(root.id, direction, depth)
    page = nodes[offset : offset + limit]
    if json_out:
        print_json(
            {
                "artifact": root.id,
                "kind": root.kind,
                "total": len(nodes),
                "offset": offset,
                "nodes": [
                    {"id": n.id, "kind": n.kind, "depth": n.depth, "via": n.via} for n in page
                ],
            }
        )
        return
    table = Table(title=f"lineage of {root.kind} {root.id[:16]} ({len(nodes)} nodes)")
    for col in ("depth", "kind", "id", "via"):
        table.add_column(col)
    for n in page:
        table.add_row(str(n.depth), n.kind, n.id[:16], n.via[:16])
    console.print(table)
    if offset + limit < len(nodes):
        console.print(f"more: --offset {offset + limit}")


@app.command("verify")
@handled
def verify(
    ref: str | None = typer.Argument(None, help="one artifact (default: all)"),
    json_out: bool = JsonOpt,
) -> None:
    """Re-hash stored bytes; reports every corrupted or missing artifact; exit 1 if any."""
    with build(create=False) as app:
        rt = app.rt
        results = list(rt.artifacts.verify(ref))
    bad = [(i, p) for i, p in results if p is not None]
    if json_out:
        print_json(
            {
                "checked": len(results),
                "ok": not bad,
                "problems": [
                    {"id": i.id, "kind": i.kind, "error": type(p).__name__, "message": str(p)}
                    for i, p in bad
                ],
            }
        )
    else:
        for i, p in bad:
            console.print(
                f"[red]{type(p).__name__}[/] {escape(safe(f'{i.kind} {i.id[:16]}: {p}'))}",
                markup=True,
            )
        console.print(f"checked {len(results)} artifact(s): {len(bad)} problem(s)")
    if bad:
        raise typer.Exit(1)
