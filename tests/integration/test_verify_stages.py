"""verify_scan timed stage by stage (verify_run.Stages, what bench_verify --whole reports) gives
the report an untimed verify gives, and its views part (a fresh fold in memory, compared with
the live views) still finds views rewritten on disk."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keel.audit.verify_run import Stages, run_verify, verify_scan
from keel.bootstrap import bootstrap
from tests.demo_home import demo_home, demo_settings

pytestmark = pytest.mark.integration

STAGES = [
    "notes",
    "log scan",
    "trail checks",
    "artifacts",
    "views: fresh fold",
    "views: fresh snapshot",
    "views: live snapshot",
    "views: compare",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d, _ = demo_home(tmp_path_factory.mktemp("verify-stages"))
    return d


def test_stages_are_timed_and_the_verdict_is_the_same(demo: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(demo["home"], home)
    d = {**demo, "home": str(home)}
    with bootstrap(demo_settings(d), create=False) as rt:
        stages = Stages()
        timed, _ = verify_scan(rt, [], [], stages=stages)
        assert timed == run_verify(rt, [], [])
    assert timed["ok"], timed["problems"]
    assert list(stages.seconds) == STAGES
    assert all(wall >= 0 and cpu >= 0 for wall, cpu in stages.seconds.values())
    # a deployment's document rewritten in the live views: the fresh fold disagrees
    with sqlite3.connect(home / "views.db") as db:
        key, value = db.execute(
            "SELECT key, doc FROM docs WHERE key LIKE 'deployment:%' ORDER BY key LIMIT 1"
        ).fetchone()
        doc = json.loads(value)
        doc["model_id"] = "0" * 64
        db.execute("UPDATE docs SET doc = ? WHERE key = ?", (json.dumps(doc), key))
    with bootstrap(demo_settings(d), create=False) as rt:
        report = run_verify(rt, [], [])
    assert not report["ok"] and report["view_keys_differing"] == 1
    assert [(p["area"], p["kind"], p["where"]) for p in report["problems"]] == [
        ("views", "altered", f"docs:{key}")
    ]
