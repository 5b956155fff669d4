"""`keel audit serving` and `keel models list` on a demo home answer without Typer (issue 36,
services/entrypoints/cli/fast.py), and print what the Typer commands print, byte for byte:
answers, help, errors and notes. Whatever the fast path does not take (help, bad values,
settings pydantic must parse, views behind the log) is Typer's command, unchanged.
(Start-up times: bench/bench_cli_startup.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_imports import LISTING_KEEL
from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e

TYPER_KEEL = (
    "import sys; sys.argv[0] = 'keel'; from keel_services.entrypoints.cli.app import app; app()"
)
# what the fast path exists to leave out of a query's start-up
SLOW = {
    "typer",
    "click",
    "pydantic",
    "pydantic_settings",
    "cryptography",
    "prometheus_client",
    "keel.settings",
    "keel.bootstrap",
    "keel.audit.projector",
    "keel.events",
}
# `--at` fixes the time asked about: without it each run asks about its own now.
FAST = [
    ["audit", "serving", "--env", "prod", "--at", "2026-01-01T00:00"],  # + a note on stderr
    ["audit", "serving", "--env", "prod", "--at", "2026-01-01T00:00+00:00", "--json"],
    ["audit", "serving", "--env=prod", "--at=2025-06-01", "--as-of", "2025-07-01"],
    ["audit", "serving", "--json", "--env", "staging", "--at", "2025-03-01Z"],
    ["audit", "serving", "--env", "prod", "--at", "2020-01-01"],  # nothing served yet
    ["audit", "serving", "--env", "nowhere", "--at", "2026-01-01", "--family", "breast_cancer"],
    ["models", "list"],
    ["models", "list", "--json"],
    ["models", "list", "--wide", "--limit", "2", "--offset", "1"],
    ["models", "list", "--env", "prod", "--json"],
    ["models", "list", "--env", "prod"],
]
TYPERS = [
    ["audit", "serving", "--help"],
    ["models", "list", "--help"],
    ["audit", "serving"],  # --env missing
    ["audit", "serving", "--env"],
    ["audit", "serving", "--env", "prod", "--env", "staging", "--at", "2026-01-01"],  # last wins
    ["audit", "serving", "--env", "prod", "--bogus"],
    ["audit", "serving", "--env", "prod", "extra"],
    ["audit", "serving", "--env", "prod", "--at", "yesterday"],
    ["audit", "serving", "--env", "prod", "--family", "nope"],
    ["models", "list", "--limit", "0"],
    ["models", "list", "--limit", "x"],
    ["models", "list", "--offset", "-1"],
    ["models", "list", "--json=1"],
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    return demo_home(tmp_path_factory.mktemp("demo"))


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)
    return out.returncode, out.stdout, out.stderr


def typers(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out = subprocess.run(
        [sys.executable, "-c", TYPER_KEEL, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return out.returncode, out.stdout, out.stderr


def loaded(args: list[str], env: dict[str, str], tmp_path: Path) -> set[str]:
    """The modules `keel ARGS` loaded (the console script's body, as the user runs it)."""
    listing = tmp_path / "modules"
    out = subprocess.run(
        [sys.executable, "-c", LISTING_KEEL, str(listing), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode in (0, 1, 2), out.stderr
    return set(listing.read_text().split())


def _wide(env: dict[str, str]) -> dict[str, str]:
    return {**env, "COLUMNS": "200"}  # IDs unfolded: a table that differs shows where


@pytest.mark.parametrize("args", FAST, ids=" ".join)
def test_an_answer_is_typers_answer_without_typer(
    demo: tuple[dict[str, Any], dict[str, str]], args: list[str], tmp_path: Path
) -> None:
    env = _wide(demo[1])
    fast = run(args, env)
    assert fast[0] == 0, fast[2]
    assert fast == typers(args, env)
    assert not SLOW & loaded(args, env, tmp_path)


@pytest.mark.parametrize("args", TYPERS, ids=" ".join)
def test_help_and_errors_are_typers(
    demo: tuple[dict[str, Any], dict[str, str]], args: list[str], tmp_path: Path
) -> None:
    env = _wide(demo[1])
    assert run(args, env) == typers(args, env)
    assert "typer" in loaded(args, env, tmp_path)


@pytest.mark.parametrize(
    ("extra", "fast"),
    [
        ({"KEEL_LOCK_TIMEOUT": "abc"}, False),  # Settings refuses it, with pydantic's message
        ({"KEEL_HOME": "/nonexistent/keel-home"}, False),  # HomeError and its hint
        ({"KEEL_BUS": "sqlite:////nonexistent/dir/log.db"}, False),
        ({"KEEL_TRUST": "/nonexistent/keys.toml"}, True),  # no keys.toml: the same answer
    ],
    ids=["lock-timeout", "home", "bus", "trust"],
)
def test_settings_answer_as_through_typer(
    demo: tuple[dict[str, Any], dict[str, str]],
    extra: dict[str, str],
    fast: bool,
    tmp_path: Path,
) -> None:
    env = {**_wide(demo[1]), **extra}
    args = ["models", "list", "--json"]
    code, out, err = run(args, env)
    typers_code, typers_out, typers_err = typers(args, env)
    # a ValidationError is a traceback whose frames name the script: its message must match
    assert (code, out, err.splitlines()[-3:]) == (
        typers_code,
        typers_out,
        typers_err.splitlines()[-3:],
    )
    assert ("typer" not in loaded(args, env, tmp_path)) is fast


def test_views_behind_the_log_are_folded_by_the_command_first(
    demo: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    """A write the views have not seen: the query runs through Typer (which folds it), and the
    next one is fast again."""
    d, env = demo
    work = tmp_path / "copy"
    shutil.copytree(Path(d["home"]).parent, work, symlinks=True)
    old = str(Path(d["home"]).parent)
    env = {k: v.replace(old, str(work)) if k.startswith("KEEL_") else v for k, v in env.items()}
    env.update(KEEL_ACTOR="tester", KEEL_WITNESS_DIR=str(tmp_path / "witness"), COLUMNS="200")
    note = tmp_path / "note.txt"
    note.write_text("a file recorded after the demo\n")
    put = run(["artifacts", "put", str(note), "--kind", "note"], env)
    assert put[0] == 0, put[2]
    args = ["models", "list", "--json"]
    first = loaded(args, env, tmp_path)
    assert "keel.audit.projector" in first  # the command folded the new event
    assert not SLOW & loaded(args, env, tmp_path)  # and the next answer is fast again
    assert run(args, env) == typers(args, env)
    listed = run(["artifacts", "list", "--kind", "note", "--json"], env)
    assert put[1].strip() in listed[1]


def _into_closed_pipe(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written, as after `| head -1`
    try:
        out = subprocess.run(
            argv, stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=300
        )
    finally:
        os.close(write)
    return out.returncode, out.stderr


@pytest.mark.parametrize("args", [FAST[1], FAST[6], FAST[7]], ids=" ".join)
def test_a_reader_gone_ends_it_as_typer_does(
    demo: tuple[dict[str, Any], dict[str, str]], args: list[str]
) -> None:
    env = _wide(demo[1])
    fast = _into_closed_pipe([KEEL, *args], env)
    assert fast == _into_closed_pipe([sys.executable, "-c", TYPER_KEEL, *args], env)
    assert fast[0] == 1
