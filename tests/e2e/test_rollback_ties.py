"""Rollbacks at one business time, one after another, on a demo home: each says what serves
afterwards, and the audit views, the deployments list and a fresh fold (`keel audit verify`)
say the same - the one recorded last, never the one with the larger random event ID."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e
AT = "2026-01-01T00:00:00Z"


def test_repeated_rollbacks_at_one_time_serve_the_last_recorded(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path)

    def keel(*args: str) -> Any:
        r = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    fam = ("--family", "breast_cancer", "--env", "prod")
    # each rollback at AT returns to the model before the last one at AT: they alternate, so
    # ties broken by event ID disagree with the rollback's own answer most of the time
    before = keel("audit", "serving", *fam, "--at", AT, "--json")["serving"]["model_id"]
    for _ in range(5):
        rolled = keel("deploy", "rollback", *fam, "--at", AT, "--json")
        assert rolled["previous_model_id"] == before
        serving = keel("audit", "serving", *fam, "--at", AT, "--json")["serving"]
        assert serving["model_id"] == rolled["model_id"] and serving["kind"] == "rollback"
        rows = keel("deployments", "list", *fam, "--json")["deployments"]
        at_t = [d for d in rows if d["since"].startswith("2026-01-01T00:00:00")]
        assert at_t[0]["model_id"] == rolled["model_id"]  # newest first: the last recorded
        before = rolled["model_id"]
    report = keel("audit", "verify", "--json")
    assert report["ok"], report
