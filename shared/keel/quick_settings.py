"""The settings a query's fast path reads, taken from the environment as `keel.settings.Settings`
takes them, without pydantic-settings (issue 36).

`Settings()` costs ~100 ms to import (pydantic-settings builds its models and imports asyncio)
out of the 250 ms `keel audit serving` may take. Only variables whose every value is valid as
given (text and paths) are read here; an environment that sets any other KEEL_* variable (a
number, a flag, one this module does not know, or a name spelled twice) gets None, and the
caller builds the real Settings, so validation and its messages stay pydantic's.
tests/unit/test_quick_settings.py checks each field against Settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Settings fields typed str, Path or Path | None (the rest are parsed by pydantic).
TEXT = frozenset(
    {
        "actor",
        "api_token",
        "artifacts",
        "bus",
        "chromium",
        "fold",
        "identity",
        "mlflow_webhook_secret",
        "openlineage",
        "principal",
        "views",
    }
)
PATHS = frozenset({"home", "project"})
# Settings' _empty_is_unset: an empty value means the default, not the working directory.
OPTIONAL_PATHS = frozenset(
    {"admin_dir", "api_tokens", "keys_dir", "schemas", "secrets", "trust", "witness_dir"}
)
PREFIX = "keel_"  # Settings' env_prefix, matched case-insensitively as pydantic-settings does


@dataclass(frozen=True)
class QuickSettings:
    """The fields a query reads, with Settings' defaults and derived paths."""

    values: Mapping[str, str]

    def text(self, name: str) -> str:
        return self.values.get(name, "")

    def path(self, name: str) -> Path | None:
        value = self.values.get(name)
        if name in PATHS:
            return Path(value if value is not None else DEFAULTS[name])
        return Path(value) if value else None

    @property
    def home(self) -> Path:
        return self.path("home") or Path(DEFAULTS["home"])

    @property
    def project(self) -> Path:
        return self.path("project") or Path(DEFAULTS["project"])

    def trust_file(self) -> Path:
        """As Settings.trust_file: KEEL_TRUST, else keys.toml beside the project file."""
        return self.path("trust") or self.project.with_name("keys.toml")


DEFAULTS = {"home": ".keel", "project": "keel.toml"}


def quick_settings(environ: Mapping[str, str]) -> QuickSettings | None:
    """The KEEL_* variables of `environ` when each is text or a path; else None."""
    found: dict[str, str] = {}
    for key, value in environ.items():
        name = key.lower()
        if not name.startswith(PREFIX):
            continue
        name = name[len(PREFIX) :]
        if name in found or name not in TEXT | PATHS | OPTIONAL_PATHS:
            return None
        found[name] = value
    return QuickSettings(found)
