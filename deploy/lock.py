"""One launcher at a time per stack directory.

Two `make up` at once in one directory each started a SeaweedFS on the same data (the second
one's master found the first's volumes, lost its state, and froze volume growth: every write
refused) and raced on Kafka's storage and pid files. `up` and `down` now hold an exclusive
lock on DIR/launcher.lock; a second one stops at once and names the holder."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.processes import LaunchError

LOCK_FILE = "launcher.lock"


@contextmanager
def held(stack_dir: Path, action: str) -> Iterator[None]:
    """Hold the stack directory's lock for `action` (up, down), or raise LaunchError naming the
    launcher that holds it. The kernel drops the lock when the holder exits, killed or not, so
    a stale lock file never blocks anyone."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    path = stack_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by the servers we spawn
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LaunchError(
                f"another launcher ({holder(path)}) is working on the stack in {stack_dir}: "
                "wait until it returns (`up` returns once the stack is ready), then run this "
                "again; two at once in one directory would start two servers on the same data"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {action}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(path: Path, attempts: int = 20) -> str:
    """'pid N, running `up`' from the lock file; the holder writes it right after locking, so
    an empty file is read again a few times (bounded) before saying the pid is unknown."""
    for _ in range(attempts):
        fields = path.read_text().split()
        if len(fields) == 2 and fields[0].isdigit():
            return f"pid {fields[0]}, running `{fields[1]}`"
        time.sleep(0.05)
    return "pid not yet written: it has just started"
