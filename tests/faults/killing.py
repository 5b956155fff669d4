"""Kill a projector process at random points of its fold, 20 times, bounded in time.

A point is chosen by progress, not by wall time: each run is killed once the views show a
random number more events applied, plus a random sub-batch delay, so kills land in every phase
of a batch (fold, link append, view apply) whatever the machine's speed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KEEL = str(Path(sys.executable).with_name("keel"))


BATCH = 5000


def kill_repeatedly(
    env: dict[str, str],
    applied: Callable[[], int],
    total: int,
    kills: int,
    seed: int,
    budget_s: float = 600,
) -> int:
    """Run `keel audit project` with `env` until `kills` SIGKILLs landed mid-fold or the fold
    finished; returns the number of kills that landed before every event was applied.

    Why only those: a process still signing its checkpoint after the last batch can be killed
    too, and at 20,000 a batch half of the SQLite test's 20 kills landed there, so "20 kills"
    no longer meant 20 interrupted folds (session 16)."""
    rnd = random.Random(seed)
    killed = 0
    deadline = time.monotonic() + budget_s
    while killed < kills and time.monotonic() < deadline:
        if applied() >= total:
            break  # every event applied: no fold left to interrupt
        target = min(total - 1, applied() + rnd.randint(1, 2 * total // (3 * kills)))
        proc = subprocess.Popen(
            # 5000 a batch throughout: a kill lands after a batch's commit, and at the default
            # 20,000 a batch while far behind (decision 0040) a 200k fold has only ~10 of them
            [KEEL, "audit", "project", "--json", "--batch", str(BATCH)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None and applied() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rnd.uniform(0, 0.2))  # somewhere inside the next batch
        if proc.poll() is not None:
            break  # it finished before the kill: nothing left to interrupt
        mid_fold = applied() < total
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed += mid_fold
    return killed


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}, **extra}
