"""Users plug in their own feature transform and trainer as `module:function` entry points."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from keel.artifacts.codeversion import code_version
from keel.errors import ConfigError, KeelError


def load_entry_point(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"entry point {spec!r}: cannot import {module_name!r} ({exc})",
            hint="install the package that holds it or fix the name in keel.toml",
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"entry point {spec!r}: {module_name} has no callable {attr!r}")
    return fn  # type: ignore[no-any-return]


def plugin_code_version(spec: str, *packages: str) -> str:
    """code_version of a step: the user's plugin module plus Keel's own packages."""
    return code_version(load_entry_point(spec), *packages)


class UserCodeError(KeelError):
    """User code raised: names the entry point and the stage, never a raw traceback."""

    def __init__(self, entry_point: str, stage: str, exc: BaseException) -> None:
        self.entry_point, self.stage = entry_point, stage
        self.error, self.reason = type(exc).__name__, str(exc) or repr(exc)
        super().__init__(
            f"{stage}: {entry_point} raised {self.error}: {self.reason}",
            hint="fix the user code (it is recorded as TrainingFailed); rerunning picks up "
            "from this stage",
        )


def call_user(entry_point: str, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run user code; any exception becomes a UserCodeError naming the entry point."""
    try:
        return fn(*args)
    except KeelError:
        raise
    except Exception as exc:  # user code may raise anything: it is reported, not hidden
        raise UserCodeError(entry_point, stage, exc) from exc
