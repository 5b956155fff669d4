"""Users plug in their own feature transform and trainer as `module:function` entry points."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from keel.artifacts.codeversion import code_version
from keel.errors import ConfigError


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
