"""A Typer group whose sub-commands are imported when they run, not when `keel` starts.

Importing every command module cost ~450 ms per invocation (numpy, pydantic-settings, the
pipeline, the report builder...), paid even by `keel version`. Click's LazyGroup pattern:
commands are registered by name and module path (tree.py); `get_command` imports one module;
the help listing shows the table's one-line help without importing anything.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup

from keel_services.entrypoints.cli.tree import BY_NAME, ENTRIES, Entry


def resolve(target: str) -> Any:
    """The object named by "package.module:attribute"."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load(entry: Entry) -> click.Command:
    """The entry's real click command, built as `app.command(...)` / `app.add_typer(...)`
    would have built it on the root app."""
    holder = typer.Typer()
    if entry.group:
        sub: typer.Typer = resolve(entry.target)
        for extra in entry.extras:
            # Registered once per process, at the end, as main.py used to do after its imports.
            if not any(c.name == extra.name for c in sub.registered_commands):
                sub.command(extra.name, hidden=extra.hidden)(resolve(extra.target))
        holder.add_typer(sub, name=entry.name)
    else:
        holder.command(entry.name)(resolve(entry.target))
    # Two commands, so get_group builds a group and never the single-command shortcut.
    holder.command("_")(lambda: None)
    built = typer.main.get_group(holder)
    command = built.commands[entry.name]
    return command


class LazyGroup(TyperGroup):
    """The root `keel` group: tree.ENTRIES listed in order, each imported on first use."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [e.name for e in ENTRIES]
        return names + [n for n in self.commands if n not in BY_NAME]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = BY_NAME.get(cmd_name)
        if entry is None:
            return None
        if self._listing:
            # The help listing needs a name and one line of help: no import for that.
            return TyperCommand(entry.name, help=entry.help)
        command = load(entry)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
