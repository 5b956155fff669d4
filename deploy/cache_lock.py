"""One installer at a time per component cache (~/.cache/keel, KEEL_CACHE).

Two `make components` (`python -m deploy.launcher ensure`) at once, or an ensure beside a
`make up` that installs on first use, both found a component missing and installed it into the
same `<name>.partial` directory: one removed what the other was writing, and the second rename
onto a finished install failed. Every function that may install now runs under an exclusive
lock on CACHE/components.lock: a second installer waits (saying so) and then finds the cache
complete. The kernel drops the lock when its holder exits, killed or not. Re-entrant within a
process (ensure_all calls the others)."""

from __future__ import annotations

import fcntl
import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

LOCK_FILE = "components.lock"
P = ParamSpec("P")
R = TypeVar("R")
_held = 0  # how deep this process is inside the lock


@contextmanager
def held(cache: Path) -> Iterator[None]:
    """Hold the cache's lock, waiting for another installer if one holds it."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = path.read_text().strip() or "another process"
            print(f"keel setup: waiting for {who} installing into {cache}", file=sys.stderr,
                  flush=True)  # fmt: skip
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        _held = 1
        try:
            yield
        finally:
            _held = 0
    finally:
        os.close(fd)  # releases the lock


def one_installer(cache: Callable[[], Path]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated finder/installer under the lock of the cache `cache()` names."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def locked(*args: P.args, **kwargs: P.kwargs) -> R:
            with held(cache()):
                return fn(*args, **kwargs)

        return locked

    return wrap
