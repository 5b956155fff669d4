"""code_version: a digest of the source that produces an artifact, never a hand-set string.

Covers whole packages (a service, the keel library) and single modules (a user's plugin). Paths
enter the digest relative to the package, so two checkouts in different places agree.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from keel.errors import KeelError


class NoSourceToVersion(KeelError, ValueError):
    """The code was not read from a file (`python -`, `python -c`, a notebook, a REPL), so
    there are no bytes to digest. A ValueError too, for callers that caught the old error."""

    hint = (
        "save the code in a file (run it as `python file.py`, or import it from a module), "
        "or give the code's version yourself"
    )


def _sources(module: ModuleType) -> list[tuple[str, Path]]:
    file = getattr(module, "__file__", None)
    # `python -` sets __file__ to "<stdin>" (no such file); `python -c` and notebooks set none
    if file is None or not Path(file).is_file():
        where = f" (it was read from {file})" if file else ""
        raise NoSourceToVersion(f"{module.__name__} has no source file to version{where}")
    path = Path(file)
    if path.name == "__init__.py":  # a package: every .py below it
        root = path.parent
        return [
            (f"{module.__name__}/{p.relative_to(root).as_posix()}", p)
            for p in sorted(root.rglob("*.py"))
            if "__pycache__" not in p.parts
        ]
    return [(f"{module.__name__}.py", path)]


@lru_cache(maxsize=256)
def _module_digest(name: str) -> str:
    h = hashlib.sha256()
    for rel, path in _sources(importlib.import_module(name)):
        h.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def code_version(*parts: ModuleType | Callable[..., Any] | str) -> str:
    """Digest of the source of modules, packages (by object or dotted name) or callables."""
    names = set()
    for part in parts:
        if isinstance(part, str):
            names.add(part)
        elif isinstance(part, ModuleType):
            names.add(part.__name__)
        else:
            mod = inspect.getmodule(part)
            if mod is None:
                raise ValueError(f"cannot find the module of {part!r}")
            names.add(mod.__name__)
    h = hashlib.sha256(b"keel-code-v1\n")
    for name in sorted(names):
        h.update(name.encode() + b"=" + _module_digest(name).encode() + b"\n")
    return h.hexdigest()
