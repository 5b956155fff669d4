"""Issue 33, item 3, on the embedded default: a rewrite in the middle of history is never
re-signed. The home's default local witness (outside KEEL_HOME, under XDG_STATE_HOME, which
tests/conftest.py points at a throwaway directory) holds the last checkpoint; after June's prod
PromotionRejected, every audit-topic row and views.db are deleted, the next ordinary command
refuses to sign, and `verify` consults the witness without being told."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keel.codec import Codec
from keel.events import decode_event
from keel.schemas.registry import load_registry
from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    """One demo home, attacked in place (its path is part of its witness's name)."""
    return demo_home(tmp_path_factory.mktemp("guard"))


def keel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=600)


def june_prod_rejection(db: sqlite3.Connection) -> int:
    codec = Codec(load_registry())
    for seq, value in db.execute("SELECT seq, value FROM events WHERE topic = 'registry'"):
        event = decode_event(codec, value)
        june = event.envelope.occurred_at.month == 6
        if event.EVENT_TYPE == "PromotionRejected" and event.env == "prod" and june:
            return int(seq)
    raise AssertionError("the demo has no June prod PromotionRejected")


def test_checkpoint_to_a_missing_directory_keeps_every_checkpoint(
    demo: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    _, env = demo
    w = tmp_path / "W"
    for _ in range(2):
        r = keel(env, "audit", "checkpoint", "--to", f"{w}/")
        assert r.returncode == 0, r.stderr
    kept = sorted(w.glob("checkpoint-*.json"))
    assert w.is_dir() and len(kept) == 2
    assert all(json.loads(p.read_text())["notes"] for p in kept)


def test_a_rewrite_in_the_middle_is_refused_and_verify_reports_it(
    demo: tuple[dict[str, Any], dict[str, str]],
) -> None:
    info, env = demo
    home = Path(info["home"])
    r = keel(env, "audit", "verify", "--json")
    before = json.loads(r.stdout)
    assert not [p for p in before["problems"] if p["area"] == "checkpoint"], before["problems"]

    with sqlite3.connect(home / "log.db") as db:
        seq = june_prod_rejection(db)
        db.execute("DELETE FROM events WHERE seq = ?", (seq,))
        db.execute("DELETE FROM events WHERE topic = 'audit'")
    (home / "views.db").unlink()

    r = keel(env, "audit", "history")
    assert r.returncode != 0
    assert "refusing to sign a checkpoint" in r.stderr and "default witness" in r.stderr
    assert "backup or replica" in r.stderr  # what to do
    with sqlite3.connect(home / "log.db") as db:
        (audit_rows,) = db.execute("SELECT COUNT(*) FROM events WHERE topic = 'audit'").fetchone()
    assert audit_rows == 0  # nothing was re-signed

    r = keel(env, "audit", "verify", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1
    assert any(p["kind"] == "refused" for p in doc["problems"])
    assert any(
        p["kind"] in ("truncated", "rewritten") and "default witness" in p["detail"]
        for p in doc["problems"]
    ), doc["problems"]
