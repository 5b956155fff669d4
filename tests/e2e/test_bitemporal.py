"""Business time (--at) and recorded time (--as-of): a rollback written into the past today
never changes what an earlier as-of answer said, and answers as of now mark it backdated."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e


def keel(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [KEEL, *args, "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_a_backdated_rollback_leaves_earlier_as_of_answers_alone(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path / "d")
    serving = ("audit", "serving", "--env", "prod", "--at", "2025-07-01")
    time.sleep(0.01)
    before_rollback = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    known_then = keel(env, *serving, "--as-of", before_rollback)["serving"]
    july_2 = keel(env, *serving, "--as-of", "2025-07-02")  # the question, before
    rolled = keel(
        env,
        "deploy",
        "rollback",
        "--family",
        "breast_cancer",
        "--env",
        "prod",
        "--at",
        "2025-06-15",
    )
    still = keel(env, *serving, "--as-of", before_rollback)["serving"]
    assert still == known_then, "a write into the past changed an earlier as-of answer"
    # the demo recorded everything today, so on 2025-07-02 nothing was known yet; either way
    # the rollback written today does not change that answer
    assert keel(env, *serving, "--as-of", "2025-07-02") == july_2
    now = keel(env, *serving)["serving"]
    assert now["model_id"] == rolled["model_id"] != known_then["model_id"]
    assert now["since"].startswith("2025-06-15") and now["backdated"] is True
    recorded = datetime.fromisoformat(now["recorded_at"])
    assert recorded > datetime.fromisoformat(before_rollback)
    # the history shows both times, and as of before the rollback it is not there
    history = keel(env, "audit", "history")["decisions"]
    assert all("recorded_at" in d for d in history)
    text = subprocess.run(
        [KEEL, "audit", "serving", "--env", "prod", "--at", "2025-07-01"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    assert "backdated" in text and "recorded_at" in text


def test_a_business_time_in_the_future_is_refused(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path / "d")
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    out = subprocess.run(
        [KEEL, "deploy", "rollback", "--family", "breast_cancer", "--env", "prod", "--at", later],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 2 and "is in the future" in out.stderr, out.stderr
