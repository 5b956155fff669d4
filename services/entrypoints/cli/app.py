"""The `keel` Typer app: the root group, `keel version` and `keel --version`. Sub-commands are
listed in tree.py and imported only when one runs (lazy.py)."""

from __future__ import annotations

import typer

from keel import __version__
from keel_services.entrypoints.cli.lazy import LazyGroup
from keel_services.entrypoints.cli.tree import APP_HELP, VERSION_OPTION_HELP

app = typer.Typer(
    name="keel",
    help=APP_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help=VERSION_OPTION_HELP, is_eager=True, callback=_print_version
    ),
) -> None:
    # Only the eager --version option lives here; every command has its own entry point.
    pass


@app.command("version")
def version() -> None:
    """Print Keel's version."""
    typer.echo(__version__)
