"""Issue 35: `make components` (`python -m deploy.launcher ensure`) was not locked: two at once
installed into the same partial directory under the cache and one failed or left a broken
install. Two real ensures into one fresh cache: both succeed and the cache is complete (Kafka's
jars fetched by Maven, as on a new machine; SeaweedFS, built once from source, is linked in
from the real cache so the test does not rebuild it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import components
from deploy.kafka_broker import KAFKA_VERSION

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_two_ensures_at_once_leave_one_complete_cache(tmp_path: Path) -> None:
    real = components.CACHE
    cache = tmp_path / "cache"
    cache.mkdir()
    for built in real.glob("seaweedfs-*"):
        (cache / built.name).symlink_to(built)
    env = {**os.environ, "KEEL_CACHE": str(cache)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "deploy.launcher", "ensure"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, out + err
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    want = sorted(f.name for f in (real / f"kafka-{KAFKA_VERSION}" / "libs").iterdir())
    assert sorted(f.name for f in libs.iterdir()) == want  # every jar, once
    assert not list(cache.glob(f"kafka-{KAFKA_VERSION}/*.partial"))  # nothing half-made left
    waited = [err for _, err in outs if "waiting for" in err]
    assert len(waited) <= 1  # the second one waited for the first (when they met)
