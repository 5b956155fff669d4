"""Shared CLI plumbing: JSON output, error reporting, `K=V` parsing."""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from keel.errors import KeelError
from keel.timeparse import parse_time

if TYPE_CHECKING:
    import typer

# Recorded text (actors, reasons, field names) is data: never read as markup. The few styled
# labels Keel prints pass markup=True with every interpolated value escaped.
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def user_time(text: str | None, what: str = "") -> datetime:
    """A time given on the command line (default: now); a time without a zone is taken as UTC
    and the user is told so."""
    if text is None:
        return datetime.now(UTC)
    when, assumed = parse_time(text)
    if assumed:
        err_console.print(f"note: {(what + ' ') if what else ''}{text} has no zone; UTC assumed")
    return when


def row(table: Any, *cells: Any) -> None:
    """A table row of recorded values: each shown as plain, escaped text."""
    table.add_row(*(Text(safe(str(c))) for c in cells))


def safe(text: str) -> str:
    """Control characters shown as escapes (\\x1b...), so recorded text cannot move the
    cursor, clear the screen or colour a fake verdict on an auditor's terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


F = TypeVar("F", bound=Callable[..., Any])


def print_json(doc: Any) -> None:
    # Plain print: Rich would wrap long lines and break machine readers.
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def fail(message: str, hint: str = "", code: int = 2) -> typer.Exit:
    # imported here: the fast path (fast.py) prints through this module without Typer
    import typer

    # messages carry recorded text and TOML snippets: data, never markup
    err_console.print(f"[bold red]error:[/] {escape(safe(message))}", markup=True)
    if hint:
        err_console.print(f"[yellow]hint:[/] {escape(safe(hint))}", markup=True)
    return typer.Exit(code)


def handled(fn: F) -> F:
    """Turn KeelError into a two-line message (what is wrong, what to do) and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeelError as exc:
            raise fail(str(exc), exc.hint) from None

    return wrapper  # type: ignore[return-value]


def parse_params(items: list[str]) -> dict[str, Any]:
    """`K=V` pairs; V is read as JSON when it parses (numbers, true, lists), else as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise KeelError(
                f"--param {item!r} is not K=V", hint="e.g. --param lang=en --param temperature=0.2"
            )
        value: Any
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        except RecursionError:
            value = _TOO_DEEP
        out[key] = value
        if value is _TOO_DEEP or _depth(value) > MAX_PARAM_DEPTH:
            raise KeelError(
                f"--param {key}: JSON nested deeper than {MAX_PARAM_DEPTH} levels",
                hint="parameters identify an artifact: pass flat values or shallow lists/objects",
            )
    return out


MAX_PARAM_DEPTH = 32
_TOO_DEEP = object()


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_PARAM_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level
