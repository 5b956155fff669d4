"""Issue 33, item 3: a deliberate restore is an explicit, recorded act. On a demo home whose
log lost June's prod PromotionRejected (the state a restore from an older copy leaves), every
ordinary command refuses to sign; `keel audit reset-trust --reason` records a TrustReset signed
by the admin key, sets the default witness's notes aside (kept), and checkpoints are published
again; every answer after it (audit serving / why / history, verify, the console's health page)
says "trust reset at T by X: reason"."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keel.views.sqlite import SqliteViewStore
from keel_services.audit.console import pages
from keel_services.entrypoints.demo.story import FAMILY
from tests.demo_home import demo_home
from tests.e2e.test_checkpoint_guard import june_prod_rejection, keel

pytestmark = pytest.mark.e2e
REASON = "restored log.db from the 06:00 backup after a disk fault"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    return demo_home(tmp_path_factory.mktemp("reset"))


def audit_rows(home: Path) -> int:
    with sqlite3.connect(home / "log.db") as db:
        (n,) = db.execute("SELECT COUNT(*) FROM events WHERE topic = 'audit'").fetchone()
    return int(n)


def words(text: str) -> str:
    """Text as one line (Rich wraps at the terminal's width)."""
    return " ".join(text.split())


def json_of(r: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert r.stdout.startswith("{"), r.stderr
    return dict(json.loads(r.stdout))


def test_a_restore_is_refused_then_reset_and_every_answer_says_so(
    demo: tuple[dict[str, Any], dict[str, str]],
) -> None:
    info, env = demo
    home = Path(info["home"])
    r = keel(env, "audit", "reset-trust", "--reason", REASON)
    assert r.returncode != 0 and "nothing to reset" in r.stderr  # never a routine step

    with sqlite3.connect(home / "log.db") as db:  # what an older copy of the log looks like
        db.execute("DELETE FROM events WHERE seq = ?", (june_prod_rejection(db),))
        db.execute("DELETE FROM events WHERE topic = 'audit'")
    (home / "views.db").unlink()

    r = keel(env, "audit", "history")
    assert r.returncode != 0 and "refusing to sign a checkpoint" in r.stderr
    assert "keel audit reset-trust" in r.stderr  # the refusal says how to declare a restore
    assert audit_rows(home) == 0

    r = keel(
        {**env, "KEEL_ACTOR": "ops-lead"}, "audit", "reset-trust", "--reason", REASON, "--json"
    )
    assert r.returncode == 0, r.stderr
    done = json_of(r)
    assert done["by"] == "ops-lead"
    assert done["reason"] == REASON and done["checkpoint"]  # signed over the restored log
    assert {a["held_by"].split(" (")[0] for a in done["checkpoints_set_aside"]} >= {
        "the default witness"
    }
    assert done["witness_notes_set_aside"] > 0
    assert audit_rows(home) == 1

    # publishing works again: an ordinary command that records something is checkpointed
    family = FAMILY
    r = keel(env, "deploy", "rollback", "--family", family, "--env", "prod")
    assert r.returncode == 0, r.stderr
    assert keel(env, "audit", "history").returncode == 0
    assert audit_rows(home) == 2

    line = f"by {done['by']}: {REASON}"
    for args in (["history"], ["serving", "--env", "prod"], ["why", "--env", "prod"]):
        args = [*args, "--family", family]
        doc = json_of(keel(env, "audit", *args, "--json"))
        assert line in doc["trust_reset"]["line"], args
        assert doc["trust_reset"]["event_id"] == done["event_id"]
        text = keel(env, "audit", *args)
        assert text.returncode == 0 and line in words(text.stdout), text.stdout

    r = keel(env, "audit", "verify", "--json")
    doc = json_of(r)
    assert r.returncode == 0, doc["problems"]  # a declared, admin-signed restore verifies
    resets = doc["keyring"]["trust_resets"]
    assert [x["event_id"] for x in resets] == [done["event_id"]]
    assert line in resets[0]["line"]
    text = keel(env, "audit", "verify")
    assert line in words(text.stdout), text.stdout

    views = SqliteViewStore(home / "views.db")
    try:
        assert line in pages.health(views)["trust_reset"]["line"]
    finally:
        views.close()


def test_a_reset_needs_the_trails_admin_key(
    demo: tuple[dict[str, Any], dict[str, str]], tmp_path: Path
) -> None:
    """Whoever holds only the service keys (the audit key included) cannot excuse a rewrite."""
    info, env = demo
    home = Path(info["home"])
    with sqlite3.connect(home / "log.db") as db:  # another rewrite, after the reset above
        (seq,) = db.execute("SELECT MAX(seq) FROM events WHERE topic = 'deployments'").fetchone()
        db.execute("DELETE FROM events WHERE seq = ?", (seq,))
    (home / "views.db").unlink()
    other = {**env, "KEEL_ADMIN_DIR": str(tmp_path / "not-the-admin")}
    r = keel(other, "audit", "reset-trust", "--reason", "cover it up")
    assert r.returncode != 0
    assert "admin key" in r.stderr and "KEEL_ADMIN_DIR" in r.stderr, r.stderr
    assert keel(env, "audit", "history").returncode != 0  # still refused, nothing recorded
