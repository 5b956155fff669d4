"""A committed append survives kill -9, and batches are all-or-nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel.log.sqlite import SqliteEventLog

pytestmark = pytest.mark.faults

WRITER = """
import sys
from keel.log.port import OutgoingEvent
from keel.log.sqlite import SqliteEventLog
log = SqliteEventLog(__import__("pathlib").Path(sys.argv[1]))
batch = 0
while batch < 100_000:
    out = log.append([OutgoingEvent("ingest", f"b{batch}", i, b"x" * 200) for i in range(100)])
    print(out[-1].offset, flush=True)  # only after append returned: the batch is committed
    batch += 1
"""


@pytest.mark.parametrize("round_", range(5))
def test_acknowledged_batches_survive_sigkill(tmp_path: Path, round_: int) -> None:
    db = tmp_path / "log.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 30
    want = 5 + 7 * round_  # kill at a different point each round
    while len(acked) < want and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(acked) == want, "writer did not get going"

    log = SqliteEventLog(db)
    offsets = [r.offset for r in log.read()]
    log.close()
    assert acked[-1] in offsets and set(acked) <= set(offsets)
    assert len(offsets) % 100 == 0, "a half-written batch is visible"
    assert offsets == list(range(1, len(offsets) + 1))
