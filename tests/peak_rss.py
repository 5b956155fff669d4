"""Peak memory of a command, measured by the kernel: a small Python parent runs it and reads
its rusage (os.wait4). Not measured from the test process itself: a child forked from a large
parent starts with the parent's resident size in its ru_maxrss, so pytest's own memory would
count."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_PARENT = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))  # KiB on Linux
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float


def run_measured(args: list[str], env: dict[str, str], tmp: Path, timeout: float = 600) -> Measured:
    """Run `args`, returning its exit code, output and peak resident memory in MB."""
    out = tmp / f"peak-{len(list(tmp.glob('peak-*')))}.txt"
    r = subprocess.run(
        [sys.executable, "-c", _PARENT, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return Measured(r.returncode, r.stdout, r.stderr, int(out.read_text()) / 1024)
