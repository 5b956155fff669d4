"""The projector service started far behind folds larger batches until it has caught up, then
the normal size for live events (keel.audit.batching, decision 0040). Before, it folded 5000 a
batch from the first event to the last; decision 0034 measured 20000 a batch ~24% cheaper per
event for the writes. Sizes are read from the service's own output (a line per batch); no time
is asserted: on a machine slow enough a large batch is cut (never below the normal size), which
tests/unit/test_batching.py shows with a clock of its own."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from keel.log.sqlite import SqliteEventLog
from keel.views.sqlite import SqliteViewStore
from tests.e2e.test_projector_service import _append, embedded_service

pytestmark = pytest.mark.e2e
NORMAL = 5000  # the projector's batch_size
CATCH_UP = 20_000  # keel.audit.batching.CATCH_UP (spelled here: the test runs on older code too)
STEPS = 22_600  # two events a step: 45,200 waiting, more than two large batches
LIVE_STEPS = 2


def batches(out: str) -> list[int]:
    """The events of each batch, as the service said it folded them."""
    return [int(n.replace(",", "")) for n in re.findall(r"folded ([\d,]+) event\(s\)", out)]


def test_far_behind_it_folds_larger_batches_then_the_normal_size(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    for lo in range(0, STEPS, 2000):
        _append(log, lo, min(STEPS, lo + 2000))
    waiting = 2 * STEPS
    proc = embedded_service(tmp_path)
    views = SqliteViewStore(tmp_path / "views.db")
    hung = time.monotonic() + 600  # only against a hang: no speed is asserted
    while (views.get("projector:stats") or {}).get("applied") != waiting:
        assert proc.poll() is None and time.monotonic() < hung, proc.communicate()
        time.sleep(0.1)
    _append(log, STEPS, STEPS + LIVE_STEPS)  # live events, once it has caught up
    out, err = proc.communicate(timeout=600)  # folds them, then 3 s idle: exits
    assert proc.returncode == 0, err
    assert (views.get("projector:stats") or {})["applied"] == waiting + 2 * LIVE_STEPS

    sizes = batches(out)
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    caught_up = ends.index(waiting) + 1
    catch_up, live = sizes[:caught_up], sizes[caught_up:]
    assert catch_up[0] == CATCH_UP, out  # before: 5000 a batch throughout
    assert all(NORMAL <= n <= CATCH_UP for n in catch_up[:-1]), catch_up
    assert sum(live) == 2 * LIVE_STEPS and all(n <= NORMAL for n in live), live
