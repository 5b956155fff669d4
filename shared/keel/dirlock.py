"""One process at a time in a directory's critical section: an exclusive flock on DIR/NAME.

What is made on first use and shared between processes (the admin key, decision 0022) is
checked for and made under this lock, so two processes started at once cannot both find it
missing; a file several processes read, change and write back (keys.toml) is changed under one,
so none writes back a copy that lacks another's change. The kernel drops the lock when its
holder exits, killed or not, so a lock file left behind never blocks anyone. Waits for the
holder, saying so on stderr, for ever or up to a timeout (then a KeelError naming the lock file
and the holder's pid, which the holder writes into it). Re-entrant within a process (a recording
that makes the key holds the lock the making takes again); threads of one process take turns
on an in-process lock first, since flock does not tell them apart."""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from keel.errors import KeelError

_guard = threading.Lock()
_locks: dict[Path, threading.RLock] = {}
_depth: dict[Path, int] = {}  # how deep this process is inside each lock
_POLL = 0.05  # seconds between tries while a timeout runs (flock itself cannot time out)


def _thread_lock(path: Path) -> threading.RLock:
    with _guard:
        return _locks.setdefault(path, threading.RLock())


@contextmanager
def held(directory: Path, name: str, what: str, timeout: float | None = None) -> Iterator[None]:
    """Hold DIR/NAME exclusively while `what` (said to whoever waits) is done; made with the
    directory (0700) if missing. `timeout`: seconds to wait for another holder before giving
    up with a KeelError; None waits as long as it takes."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = (directory / name).resolve()
    lock = _thread_lock(path)
    if not lock.acquire(timeout=-1 if timeout is None else timeout):
        raise _not_taken(path, what, timeout, "another thread of this process")
    try:
        if _depth.get(path):
            _depth[path] += 1
            try:
                yield
            finally:
                _depth[path] -= 1
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _take(fd, path, what, timeout)
            _depth[path] = 1
            try:
                yield
            finally:
                _depth[path] = 0
        finally:
            os.close(fd)  # releases the lock
    finally:
        lock.release()


def _take(fd: int, path: Path, what: str, timeout: float | None) -> None:
    """flock `fd` exclusively, waiting for the holder up to `timeout`; then note our pid in
    the file, for the message of whoever waits next."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"keel: waiting for another process {what} ({path})", file=sys.stderr)
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + timeout
            while True:
                time.sleep(max(0.0, min(_POLL, deadline - time.monotonic())))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _not_taken(path, what, timeout, _holder(path)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "a process"


def _not_taken(path: Path, what: str, timeout: float | None, holder: str) -> KeelError:
    return KeelError(
        f"{holder} holds {path} (someone {what}); gave up waiting after {timeout:g} s",
        hint="nothing it guards was changed: wait for that process to finish and run this "
        "again. The lock is freed when its holder exits, so a holder that stays is still "
        f"running: see what it is doing (`ps -p PID`, `fuser -v {path}`) and stop it if it "
        "hangs",
    )
