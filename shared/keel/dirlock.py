"""One process at a time in a directory's critical section: an exclusive flock on DIR/NAME.

What is made on first use and shared between processes (the admin key, decision 0022) is
checked for and made under this lock, so two processes started at once cannot both find it
missing. The kernel drops the lock when its holder exits, killed or not, so a lock file left
behind never blocks anyone. Waits for the holder, saying so on stderr. Re-entrant within a
process (a recording that makes the key holds the lock the making takes again); threads of one
process take turns on an in-process lock first, since flock does not tell them apart."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_guard = threading.Lock()
_locks: dict[Path, threading.RLock] = {}
_depth: dict[Path, int] = {}  # how deep this process is inside each lock


def _thread_lock(path: Path) -> threading.RLock:
    with _guard:
        return _locks.setdefault(path, threading.RLock())


@contextmanager
def held(directory: Path, name: str, what: str) -> Iterator[None]:
    """Hold DIR/NAME exclusively while `what` (said to whoever waits) is done; made with the
    directory (0700) if missing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = (directory / name).resolve()
    with _thread_lock(path):
        if _depth.get(path):
            _depth[path] += 1
            try:
                yield
            finally:
                _depth[path] -= 1
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"keel: waiting for another process {what} ({path})", file=sys.stderr)
                fcntl.flock(fd, fcntl.LOCK_EX)
            _depth[path] = 1
            try:
                yield
            finally:
                _depth[path] = 0
        finally:
            os.close(fd)  # releases the lock
