"""`keel` starts light (issue 36): version and the top-level help import neither Typer nor any
command module; the lazy command table agrees with the commands themselves; the help page drawn
from the table is Typer's page byte for byte. (Queries on a demo home: tests/e2e/
test_cli_startup.py.)"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from keel import __version__
from keel_services.entrypoints.cli import fast
from keel_services.entrypoints.cli.lazy import load
from keel_services.entrypoints.cli.main import app
from keel_services.entrypoints.cli.tree import APP_HELP, ENTRIES
from tests.cli_imports import HEAVY, LISTING_KEEL

pytestmark = pytest.mark.unit
KEEL = str(Path(sys.executable).with_name("keel"))
# Typer renders through the page drawn by the typer app itself, as the console script did
TYPER_KEEL = (
    "import sys; sys.argv[0] = 'keel'; from keel_services.entrypoints.cli.app import app; app()"
)


def imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Every module `keel ARGS` loaded, by full and by top-level name."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "modules"
        out = subprocess.run(
            [sys.executable, "-c", LISTING_KEEL, str(listing), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode in (0, 2), out.stderr[-2000:]
        names = set(listing.read_text().split())
    return names | {n.split(".")[0] for n in names}


def first_paragraph(text: str) -> str:
    return inspect.cleandoc(text).split("\n\n")[0]


def test_every_entry_of_the_table_matches_its_command() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert group.help == APP_HELP
    assert group.list_commands(typer.Context(group)) == [e.name for e in ENTRIES]
    for entry in ENTRIES:
        command = load(entry) if entry.name != "version" else group.commands["version"]
        assert command.name == entry.name
        assert first_paragraph(command.short_help or command.help or "") == entry.help, entry.name
        assert isinstance(command, typer.core.TyperGroup) == entry.group, entry.name


def test_sub_commands_attached_from_other_modules_are_there_once() -> None:
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    for name, sub, hidden in (
        ("schemas", "reconcile", False),
        ("artifacts", "list", False),
        ("deploy", "model", True),
    ):
        command = group.get_command(ctx, name)
        assert isinstance(command, typer.core.TyperGroup)
        assert command.commands[sub].hidden is hidden
        again = load(next(e for e in ENTRIES if e.name == name))  # a second load adds none
        assert isinstance(again, typer.core.TyperGroup)
        assert list(again.commands) == list(command.commands)


@pytest.mark.parametrize("columns", ["60", "100", "150"])
@pytest.mark.parametrize("color", ["", "1"])
@pytest.mark.parametrize("args", [["--help"], []])
def test_quick_help_is_typers_page_byte_for_byte(columns: str, color: str, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "PY_COLORS")}
    env.update(COLUMNS=columns, FORCE_COLOR=color)
    quick = subprocess.run([KEEL, *args], capture_output=True, env=env, timeout=60)
    typers = subprocess.run(
        [sys.executable, "-c", TYPER_KEEL, *args], capture_output=True, env=env, timeout=60
    )
    assert quick.stdout == typers.stdout
    assert quick.stderr == typers.stderr == b""
    assert quick.returncode == typers.returncode == (0 if args else 2)
    assert b"version" in quick.stdout and b"audit" in quick.stdout


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version_is_printed_by_the_console_script_and_by_the_typer_app(args: list[str]) -> None:
    out = subprocess.run([KEEL, *args], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, __version__ + "\n", "")
    res = CliRunner().invoke(app, args)
    assert (res.exit_code, res.output) == (0, __version__ + "\n")


@pytest.mark.parametrize("args", [["version"], ["--version"], ["--help"], []])
def test_version_and_help_import_no_typer_and_no_command_module(args: list[str]) -> None:
    names = imported(args)
    assert "keel_services.entrypoints.cli.main" in names
    assert not {"typer", "click", "pydantic"} & names
    assert not {
        n for n in names if n.startswith("keel_services.entrypoints.cli.") and n.endswith("_cmd")
    }
    assert not set(HEAVY) & names


def test_a_sub_command_imports_its_own_module_only() -> None:
    names = imported(["schemas", "--help"])
    commands = {
        n for n in names if n.startswith("keel_services.entrypoints.cli.") and n.endswith("_cmd")
    }
    assert commands == {
        "keel_services.entrypoints.cli.schemas_cmd",
        "keel_services.entrypoints.cli.pipeline_cmd",
    }  # + its reconcile
    assert not set(HEAVY) & names


# -- the queries' fast path (fast.py): Typer's parse, or none ---------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["audit", "serving", "--env", "prod"], {"--env": "prod"}),
        (
            ["audit", "serving", "--json", "--env=prod", "--at", "2026-01-01", "--as-of=2026-02"],
            {"--json": True, "--env": "prod", "--at": "2026-01-01", "--as-of": "2026-02"},
        ),
        (["audit", "serving", "--env", ""], {"--env": ""}),
        (["models", "list"], {}),
        (
            ["models", "list", "--limit", "1000", "--offset=0", "--wide", "--family", "f"],
            {"--limit": 1000, "--offset": 0, "--wide": True, "--family": "f"},
        ),
    ],
)
def test_the_fast_path_reads_what_typer_accepts(args: list[str], expected: dict[str, Any]) -> None:
    assert fast.parse(args) == ((args[0], args[1]), expected)


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "serving"],  # --env is required
        ["audit", "serving", "--help"],
        ["audit", "serving", "--env"],
        ["audit", "serving", "--env", "--json"],  # which one is the value is Typer's call
        ["audit", "serving", "--env", "prod", "--env", "staging"],
        ["audit", "serving", "--env", "prod", "--", "x"],
        ["audit", "serving", "--env", "prod", "positional"],
        ["audit", "serving", "--env", "prod", "--js"],  # click suggests; it never completes
        ["audit", "why", "--env", "prod"],
        ["models", "list", "--json=yes"],
        ["models", "list", "--limit", "0"],
        ["models", "list", "--limit", "1001"],  # inventory.MAX_LIMIT
        ["models", "list", "--limit", "+5"],
        ["models", "list", "--limit", "1_0"],
        ["models", "list", "--offset", "-1"],
        ["models", "show"],
        ["models"],
    ],
)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert fast.parse(args) is None


def test_the_fast_path_imports_no_typer_and_no_pydantic() -> None:
    code = (
        "import sys; import keel_services.entrypoints.cli.fast as f, "
        "keel_services.entrypoints.cli.answers, keel.audit.current, keel.quick_settings, "
        "keel.audit.view_queries, keel.audit.inventory, keel.audit.resets, keel.log.sqlite, "
        "keel.views.sqlite, keel.signing; print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    names = set(out.stdout.split())
    assert out.returncode == 0, out.stderr
    slow = {"typer", "click", "pydantic", "pydantic_settings", "cryptography", "prometheus_client"}
    assert not slow & names
    assert not {"keel.settings", "keel.bootstrap", "keel.events", "keel.audit.projector"} & names
