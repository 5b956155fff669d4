"""What every component of the local stack shares: free ports, a server process known by its
pid file, and the one error type (what failed and what to do)."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from deploy import components

LaunchError = components.SetupError


# KEEL_PORT_RANGE="LO-HI": free_port picks only in [LO, HI). Parallel test workers each get a
# range of their own below the kernel's ephemeral ports (tests/conftest.py): the kernel's own
# pick (port 0) is shared by every process on the machine, so two workers (or a worker and an
# outgoing connection) could be handed the same port between the pick and the server's bind.
PORT_RANGE = "KEEL_PORT_RANGE"
_handed: set[int] = set()  # this process's picks in its range, never handed out twice


def port_range() -> tuple[int, int] | None:
    raw = os.environ.get(PORT_RANGE, "")
    if not raw:
        return None
    try:
        lo, hi = (int(x) for x in raw.split("-"))
    except ValueError:
        raise LaunchError(
            f"{PORT_RANGE}={raw!r} is not LO-HI (two port numbers): set it like 20000-27000, "
            f"or unset it to let the kernel pick free ports"
        ) from None
    if not 0 < lo < hi <= 65536:
        raise LaunchError(f"{PORT_RANGE}={raw!r}: want 0 < LO < HI <= 65536")
    return lo, hi


def bindable(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    span = port_range()
    if span is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    lo, hi = span
    # Random, not sequential: the worker's subprocesses (launchers, services) pick in the same
    # range with sets of their own, and a shared starting point would make them collide. Then
    # every port once in order: random draws alone can miss the last free one of a full range.
    tries = [random.randrange(lo, hi) for _ in range(hi - lo)]
    for port in itertools.chain(tries, range(lo, hi)):
        if port in _handed or not bindable(port):  # in use, or lingering in TIME_WAIT
            continue
        _handed.add(port)
        return port
    raise LaunchError(
        f"no free port in {PORT_RANGE}={lo}-{hi} ({len(_handed)} handed out by this process): "
        f"widen the range or unset {PORT_RANGE}"
    )


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def forget_secrets(port: int) -> None:
    """Drop the link that sends clients of 127.0.0.1:port to a secured stack's secrets (one
    left by a killed secured run would mislead the clients of an open server)."""
    from deploy import security

    security.unregister("127.0.0.1", port)


@dataclass
class Process:
    name: str
    pid_file: Path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            # Reap it if it is our own exited child: a zombie still answers kill(pid, 0).
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass  # not our child (started by an earlier `make up`)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if self.pid() is None:
                    break
                time.sleep(0.05)


def spawn(cmd: list[str], log: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    """Start `cmd` in its own session (a Ctrl-C in the launcher's terminal does not reach it),
    output appended to `log`, pid written to `pid_file`."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid
