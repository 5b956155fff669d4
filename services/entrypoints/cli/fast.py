"""The queries operators run in loops, answered without Typer (issue 36): `keel audit serving`
and `keel models list` on an embedded home whose views are already at the log's end.

Through Typer these cost ~0.5 s: Typer's pydantic-based argument handling, Settings
(pydantic-settings), the bootstrap (schema registry, signer) and a projector run that finds
nothing to fold. Here: the arguments parsed by a table of the two commands' options, the
settings by keel.quick_settings, the freshness by keel.audit.current, the answer by the same
query functions the client calls and printed by the same code (answers.py).

Anything else goes to Typer, unchanged, so help pages and errors are Typer's by construction:
--help, an option not in the table, a repeated option, a value Typer would refuse, a KEEL_*
variable Settings must parse, a Kafka, Redis or S3 backend, views behind the log, and any error
while answering (the Typer command then runs from the start and reports it). Nothing is
printed before the answer is complete. tests/e2e/test_cli_fast_path.py compares every answer
with Typer's, byte for byte.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FLAG = "flag"


@dataclass(frozen=True)
class Option:
    kind: str  # FLAG, "text" or "int"
    low: int = 0
    high: int | None = None


def _commands() -> dict[tuple[str, str], dict[str, Option]]:
    from keel.audit.reads import MAX_LIMIT

    return {
        # audit_cmd.serving
        ("audit", "serving"): {
            "--env": Option("text"),
            "--at": Option("text"),
            "--family": Option("text"),
            "--as-of": Option("text"),
            "--json": Option(FLAG),
        },
        # inventory_cmd.models_list
        ("models", "list"): {
            "--family": Option("text"),
            "--env": Option("text"),
            "--offset": Option("int", 0),
            "--limit": Option("int", 1, MAX_LIMIT),
            "--wide": Option(FLAG),
            "--json": Option(FLAG),
        },
    }


def parse(args: list[str]) -> tuple[tuple[str, str], dict[str, Any]] | None:
    """(command, {option: value}) when Typer would accept `args` as they stand; else None."""
    if len(args) < 2:
        return None
    command = (args[0], args[1])
    options = _commands().get(command)
    if options is None:
        return None
    values: dict[str, Any] = {}
    rest = args[2:]
    i = 0
    while i < len(rest):
        name, eq, inline = rest[i].partition("=")
        opt = options.get(name)
        if opt is None or name in values:  # help, positionals, "--", unknown, repeated
            return None
        if opt.kind == FLAG:
            if eq:
                return None
            values[name] = True
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        elif i + 1 < len(rest):
            value = rest[i + 1]
            i += 2
        else:
            return None
        if value.startswith("-"):
            return None  # Typer may read it as the next option: let it decide
        if opt.kind == "int":
            if not (value.isascii() and value.isdigit()):
                return None
            number = int(value)
            if number < opt.low or (opt.high is not None and number > opt.high):
                return None
            values[name] = number
        else:
            values[name] = value
    if command == ("audit", "serving") and "--env" not in values:
        return None
    return command, values


def answer(args: list[str], environ: Any = os.environ) -> bool:
    """Answer `keel ARGS` here and return True, or print nothing and return False."""
    parsed = parse(args)
    if parsed is None:
        return False
    from keel.quick_settings import quick_settings

    s = quick_settings(environ)
    if s is None or any(s.text(n) for n in ("bus", "views", "artifacts")) or s.path("schemas"):
        return False  # a backend or a schema copy the bootstrap must open and check
    home = s.home
    if not (home.is_dir() and (home / "log.db").is_file() and (home / "views.db").is_file()):
        return False
    command, values = parsed
    try:
        show = _answer(home, s.trust_file(), s.project, command, values)
    except Exception:  # never reported here: Typer's command runs again and reports it
        return False
    if show is None:
        return False
    try:
        show()
    except BrokenPipeError:
        # As Typer's command ends (typer.core): the reader closed the pipe (`| head`): exit 1,
        # silently. stdout now goes nowhere, so flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    return True


def _answer(
    home: Path, trust_file: Path, project: Path, command: tuple[str, str], values: dict[str, Any]
) -> Callable[[], None] | None:
    """What to print, or None when the real command must run (views behind the log, a
    question it refuses)."""
    from keel.audit.current import views_current
    from keel.log.sqlite import SqliteEventLog
    from keel.signing import load_trust
    from keel.views.sqlite import SqliteViewStore

    load_trust(trust_file, project)  # as the bootstrap does: a broken key list is Typer's error
    log = SqliteEventLog(home / "log.db")
    try:
        views = SqliteViewStore(home / "views.db")
        try:
            if not views_current(log, views):
                return None
            if command == ("audit", "serving"):
                return _serving(views, values)
            return _models(views, values)
        finally:
            views.close()
    finally:
        log.close()


def _family(views: Any, name: str | None) -> str | None:
    """Client.family's choice; None where it raises (Typer's command says why)."""
    from keel.audit.reads import Reads

    known = Reads(views).families()
    if name:
        return name if name in known else None
    return known[0] if len(known) == 1 else None


def _serving(views: Any, values: dict[str, Any]) -> Callable[[], None] | None:
    from keel.audit.reads import Reads
    from keel.timeparse import parse_time

    family = _family(views, values.get("--family"))
    if family is None:
        return None
    at, as_of = values.get("--at"), values.get("--as-of")
    when = parse_time(at)[0] if at is not None else datetime.now(UTC)
    known = parse_time(as_of)[0] if as_of is not None else None
    doc = Reads(views).serving(family, values["--env"], when, known)
    reset = Reads(views).trust_reset()
    if reset:
        doc = {**doc, "trust_reset": reset}

    def show() -> None:
        from keel_services.entrypoints.cli.common import print_json, user_time

        for text in (at, as_of):  # the "no zone; UTC assumed" notes, as the command prints them
            if text is not None:
                user_time(text)
        if values.get("--json"):
            print_json(doc)
        else:
            from keel_services.entrypoints.cli import answers  # Rich's table: text only

            answers.print_serving(doc)

    return show


def _models(views: Any, values: dict[str, Any]) -> Callable[[], None] | None:
    from keel.audit.reads import Reads

    family = _family(views, values.get("--family"))
    if family is None:
        return None
    env, offset, limit = values.get("--env"), values.get("--offset", 0), values.get("--limit", 50)
    # as the client's ModelInfo (metrics: dict[str, float]) dumps them
    rows = [
        {**r, "metrics": {k: float(v) for k, v in r["metrics"].items()}}
        for r in Reads(views).models(family, env, offset, limit)
    ]
    page = {"offset": offset, "limit": limit}

    def show() -> None:
        from keel_services.entrypoints.cli.common import print_json

        if values.get("--json"):
            print_json({**page, "family": family, "env": env, "models": rows})
        else:
            from keel_services.entrypoints.cli import answers  # Rich's table: text only

            answers.print_models(family, env, rows, page, bool(values.get("--wide")))

    return show
