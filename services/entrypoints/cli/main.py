"""The `keel` command's entry point.

Operators call `keel` in loops and scripts, so start-up counts: `keel version`, `keel
--version` and the top-level help answer without importing Typer or any command module, and
every other command imports only its own module (app.py, lazy.py; bench/bench_cli_startup.py
measures it). `keel_services.entrypoints.cli.main.app` is still the whole Typer app, for tests
and tools. The console script is the application's (pyproject.toml), never the library's.

A new top-level command or group is one Entry in tree.py (name, "module:attribute", its
one-line help); tests/unit/test_cli_startup.py checks the entry against the command itself.
"""

from __future__ import annotations

import sys
from typing import Any

from keel import __version__


def main() -> None:
    args = sys.argv[1:]
    if args in (["version"], ["--version"]):
        sys.stdout.write(__version__ + "\n")
        return
    if args in ([], ["--help"]):
        from keel_services.entrypoints.cli.quick_help import print_root_help

        print_root_help()
        if args:
            sys.stdout.write("\n")  # click echoes the (empty) formatted help after Rich's page
            return
        sys.exit(2)  # as Typer's no_args_is_help: no command given
    if args[:2] in (["audit", "serving"], ["models", "list"]):
        # the queries run in loops: answered without Typer when they can be (fast.py)
        from keel_services.entrypoints.cli.fast import answer

        if answer(args):
            return
    from keel_services.entrypoints.cli.app import app

    app()


def __getattr__(name: str) -> Any:
    # `from keel_services.entrypoints.cli.main import app` (tests, doc generators) builds the
    # Typer app on demand.
    if name == "app":
        from keel_services.entrypoints.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
