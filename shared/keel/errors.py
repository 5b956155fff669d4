"""Errors that say what went wrong and what to do about it.

Every Keel error carries a `hint`: the CLI prints the message and the hint, never a traceback.
"""

from __future__ import annotations


class KeelError(Exception):
    """Base of every error Keel raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        return self.args[0] if self.args else type(self).__name__


class ConfigError(KeelError):
    """Settings, paths or URLs that cannot be used."""


class HomeError(ConfigError):
    """KEEL_HOME is missing, not a directory, or not writable."""
