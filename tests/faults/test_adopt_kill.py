"""Decision 0034: `keel keys adopt` folds the views again after the adoption as `keel audit
rebuild` does (`rebuild.fold_afresh`): into views held in memory (here spilled into a file beside
the views: a 1 MiB budget), written over the live views in one transaction once the fold is done.
Killed mid-fold (SIGKILL, a real process), the views are as they were: before, adopt cleared
them and folded in place, so a killed adopt left them cleared or half folded. A rebuild then
completes with every event adopted."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.bench_rebuild import KEEL, home_env
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from tests.faults.test_projector_kill import events
from tests.faults.test_rebuild_kill import content, positions

pytestmark = [pytest.mark.faults, pytest.mark.integration]

EVENTS = 60_000  # three of a rebuild's batches: the kill lands after the first


def keel(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run([KEEL, *args, "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_a_killed_adopt_leaves_the_views_whole(tmp_path: Path) -> None:
    # a project without keys: its history is unsigned, folded as such
    (tmp_path / "keel.toml").write_text('[identities.t]\nemits = ["*"]\n')
    (tmp_path / "home").mkdir()
    env = home_env(tmp_path)
    codec = Codec(load_registry())
    log = SqliteEventLog(tmp_path / "home" / "log.db")
    for start in range(0, EVENTS // 2, 5000):
        log.append([to_outgoing(codec, e) for i in range(start, start + 5000) for e in events(i)])
    log.close()
    keel(env, "audit", "project")
    keel(env, "keys", "create")  # keys now: the unsigned history is offered for adoption
    views = tmp_path / "home" / "views.db"
    before, folded = content(views), positions(views)
    assert folded >= EVENTS

    killed = {**env, "KEEL_REBUILD_MEMORY_MB": "1"}  # spilled at every batch: a file to watch
    proc = subprocess.Popen(
        [KEEL, "keys", "adopt", "--reason", "our history before keys", "--json"],
        env=killed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:  # its fold has written a batch: into the spill file, or into the views
            spill = list(views.parent.glob(f"{views.name}.rebuild-*"))
            if any(f.stat().st_size > 4_000_000 for f in spill) or positions(views) < folded:
                break
            assert proc.poll() is None, f"the adopt ended before it was killed: {proc.stderr}"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    assert content(views) == before  # not cleared, not half folded

    # the adoption was recorded before the fold: a rebuild folds the views with it
    doc = keel(env, "audit", "rebuild")
    assert doc["rejected"] == 0 and doc["applied"] >= EVENTS, doc
    assert not list(views.parent.glob(f"{views.name}.rebuild-*"))  # the killed one's file too
