"""Redis killed (SIGKILL) and restarted while a projector applies batches: no half batch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from deploy.processes import free_port
from deploy.redis_server import Redis
from keel.views.port import IndexAdd, Put, Tracking
from keel.views.redis import RedisViewStore

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KEYS = 50


def batch(i: int) -> list[Put | IndexAdd]:
    return [Put(f"b{i}:k{j}", {"batch": i, "j": j}) for j in range(KEYS)] + [
        IndexAdd("batches", f"b{i}", i)
    ]


def test_no_half_applied_batch_after_a_redis_kill(tmp_path: Path) -> None:
    server = Redis(tmp_path / "redis", free_port()).start()
    try:
        views = RedisViewStore(server.url)
        acked: list[int] = []
        stop = threading.Event()

        def apply_loop() -> None:
            i = 0
            while not stop.is_set() and i < 20_000:
                try:
                    views.apply(batch(i), Tracking("proj", {("t", 0): i + 1}))
                    acked.append(i)
                    i += 1
                except Exception:  # connection refused while Redis is down: retry the same batch
                    time.sleep(0.05)

        t = threading.Thread(target=apply_loop)
        t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.process.kill()
        time.sleep(0.5)
        server.start()
        time.sleep(0.5)
        stop.set()
        t.join(timeout=60)
        fresh = RedisViewStore(server.url)
        last = fresh.tracking("proj")[("t", 0)]
        assert acked and last >= acked[-1] + 1 - 1
        for i in range(last + 2):
            present = sum(fresh.get(f"b{i}:k{j}") is not None for j in range(KEYS))
            assert present in (0, KEYS), f"batch {i}: {present} of {KEYS} keys"
            if i < last:
                assert present == KEYS, f"batch {i} is before the tracking position but missing"
        assert all(fresh.get(f"b{i}:k0") is not None for i in acked)
    finally:
        server.stop()
