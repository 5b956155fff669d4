"""`keel --help` (and bare `keel`) printed from tree.py with Rich alone.

Typer renders help through typer.rich_utils, whose imports (Markdown, tracebacks, pretty
printing) cost ~90 ms on their own, more than the whole 100 ms budget of `keel --help`. This
module draws the same page, the same way (Typer 0.29's layout and styles), from the command
table; tests/unit/test_cli_startup.py compares it byte for byte with Typer's own rendering at
several widths, with and without colour, so a Typer upgrade that changes the layout fails
there instead of drifting here. Sub-command help still comes from Typer.
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

from rich.align import Align
from rich.console import Console, Group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from keel_services.entrypoints.cli.tree import APP_HELP, ENTRIES, VERSION_OPTION_HELP

USAGE = "Usage: {prog} [OPTIONS] COMMAND [ARGS]..."
OPTIONS = (
    ("--version", "<bool>", VERSION_OPTION_HELP),
    ("--help", "<bool>", "Show this message and exit."),
)


class _Options(RegexHighlighter):
    # typer.rich_utils.OptionHighlighter
    highlights: ClassVar[list[str]] = [
        r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
        r"(?P<types>\<[^\>]+\>)",
        r"(?P<usage>Usage: )",
    ]


class _Negative(RegexHighlighter):
    highlights: ClassVar[list[str]] = [
        r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
        r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
    ]


class _Types(RegexHighlighter):
    highlights: ClassVar[list[str]] = [
        r"^(?P<types_sep>(\[|<))",
        r"(?P<types_sep>\|)",
        r"(?P<types_sep>(\]|>))(\.\.\.)?$",
    ]


_highlight, _negative, _types = _Options(), _Negative(), _Types()


def _console() -> Console:
    # typer.rich_utils._get_rich_console, with the same environment switches
    force = bool(os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS"))
    width = os.getenv("TERMINAL_WIDTH")
    return Console(
        theme=Theme(
            {
                "option": "bold cyan",
                "switch": "bold green",
                "negative_option": "bold magenta",
                "negative_switch": "bold red",
                "types": "bold yellow",
                "types_sep": "dim",
                "usage": "yellow",
            }
        ),
        highlighter=_highlight,
        color_system="auto",
        force_terminal=False if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL") else (force or None),
        width=int(width) if width else None,
    )


def _text(markup: str, style: str = "") -> Text:
    return _highlight(Text.from_markup(markup, style=style))


def _panel(table: Table, title: str) -> Panel:
    return Panel(table, border_style="dim", title=title, title_align="left")


def _table(highlight: bool) -> Table:
    return Table(
        highlight=highlight,
        show_header=False,
        expand=True,
        box=None,
        show_lines=False,
        leading=0,
        row_styles=None,
        pad_edge=False,
        padding=(0, 1),
        border_style=None,
    )


def print_root_help(prog: str | None = None) -> None:
    """The page `keel --help` shows, on standard output."""
    console = _console()
    name = prog or os.path.basename(sys.argv[0])
    console.print(Padding(_highlight(USAGE.format(prog=name)), 1), style="bold")
    first, *rest = APP_HELP.split("\n\n")
    parts: list[Any] = [_text(first.replace("\n", " ").strip())]
    if rest:
        parts += [Text(""), _text("\n\n".join(rest), style="dim")]
    console.print(Padding(Align(Group(*parts), pad=False), (0, 1, 1, 1)))

    options = _table(highlight=True)
    for flag, kind, help_text in OPTIONS:
        types = Text(style="bold yellow", overflow="fold")
        types.append(kind)
        options.add_row(
            _highlight(flag),
            _highlight(""),
            _negative(""),
            _negative(""),
            _types(types),
            _columns(_text(help_text)),
        )
    console.print(_panel(options, "Options"))

    shown = list(ENTRIES)
    commands = _table(highlight=False)
    commands.add_column(style="bold cyan", no_wrap=True, width=max(len(e.name) for e in shown))
    commands.add_column("Description", justify="left", no_wrap=False, ratio=10)
    for e in shown:
        commands.add_row(Text(e.name), _text(e.help.split("\n\n")[0].strip()))
    console.print(_panel(commands, "Commands"))


def _columns(item: Text) -> Any:
    # Typer wraps each option's help in rich.columns.Columns (importing it costs little)
    from rich.columns import Columns

    return Columns([item])
