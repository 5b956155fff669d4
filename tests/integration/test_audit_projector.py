"""The projector on the embedded default: answers match the story, rebuilds are identical,
duplicates are applied once, and `audit verify` catches tampering, deletion, reordering and
insertion inside the log (the checkpoints' trees no longer match)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keel.audit import view_queries as vq
from keel.audit.anchors import NOTES
from keel.audit.projector import Projector
from keel.bootstrap import bootstrap
from keel.settings import Settings

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def keel(demo: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=demo["home"], KEEL_PROJECT=demo["project"], KEEL_KEYS_DIR=demo["keys_dir"])
    return subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)


def settings_of(demo: dict[str, Any]) -> Settings:
    return Settings(
        home=Path(demo["home"]),
        bus="",
        views="",
        project=Path(demo["project"]),
        keys_dir=Path(demo["keys_dir"]),
    )


def test_view_answers_match_the_story(demo: dict[str, Any]) -> None:
    from datetime import datetime

    with bootstrap(settings_of(demo), create=False) as rt:
        Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()
        answer = demo["answers"]["serving_prod_at"]
        at = datetime.fromisoformat(answer["at"])
        got = vq.serving_at(rt.views, "breast_cancer", "prod", at)
        assert got["serving"]["model_id"] == answer["serving"]["model_id"]
        assert got["serving"]["until"] == answer["serving"]["until"]
        prod = [d for d in demo["deployments"] if d["env"] == "prod"]
        why = vq.why_promoted(rt.views, prod[-1]["model_id"], "prod")
        assert why["over"] == prod[-2]["model_id"]
        chain = vq.why(rt.views, "breast_cancer", "prod", datetime.fromisoformat(prod[-1]["at"]))
        assert [s["step"] for s in chain["steps"]] == [
            "deployment",
            "promotion",
            "eval_report",
            "model",
            "feature_sets",
        ]
        assert chain["steps"][-1]["datasets"], "the answer reaches the datasets"


def test_rebuild_gives_identical_views_and_duplicates_apply_once(demo: dict[str, Any]) -> None:
    with bootstrap(settings_of(demo), create=False) as rt:
        Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()
        before = rt.views.snapshot()
        # the same events appended again (a producer retried): skipped by event_id
        again = [r for r in rt.log.read(["registry", "deployments"])]
        from keel.log.port import OutgoingEvent

        rt.log.append(
            [OutgoingEvent(r.topic, r.key, r.timestamp_ms, r.value, r.sig) for r in again]
        )
        progress = Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()
        assert progress.applied == 0 and progress.skipped_duplicates == len(again)
        after_dupes = rt.views.snapshot()
        rt.views.clear()
        Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()
        rebuilt = rt.views.snapshot()
    # a rebuild signs its own checkpoint (another time, so another note): the rest is equal
    signed = {"audit:checkpointed", NOTES}
    assert _without(rebuilt["docs"], signed) == _without(after_dupes["docs"], signed)
    assert rebuilt["indexes"] == after_dupes["indexes"]
    # the trees grew by the duplicates' leaves (they are in the log); everything else is equal
    grown = {"audit:trees", *signed}
    assert {k: v for k, v in before["docs"].items() if k not in grown} == {
        k: v for k, v in rebuilt["docs"].items() if k not in grown
    }
    assert before["indexes"] == rebuilt["indexes"]
    assert rebuilt["docs"]["projector:stats"]["applied"] == demo["events"]


def _without(docs: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in docs.items() if k not in keys}


def _db(home: str) -> sqlite3.Connection:
    return sqlite3.connect(str(Path(home) / "log.db"), isolation_level=None)


@pytest.mark.parametrize("attack", ["tampered", "deleted", "reordered", "inserted"])
def test_verify_catches_each_kind_of_break(demo: dict[str, Any], attack: str) -> None:
    ok = keel(demo, "audit", "verify", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"], ok.stdout + ok.stderr
    db = _db(demo["home"])
    rows = db.execute("SELECT seq FROM events WHERE topic = 'registry' ORDER BY seq").fetchall()
    target, other = rows[1][0], rows[2][0]
    if attack == "tampered":  # flip one byte inside a recorded decision
        value = bytearray(
            db.execute("SELECT value FROM events WHERE seq = ?", [target]).fetchone()[0]
        )
        value[-3] ^= 0x01
        db.execute("UPDATE events SET value = ? WHERE seq = ?", [bytes(value), target])
    elif attack == "deleted":  # a decision from the middle of the log
        db.execute("DELETE FROM events WHERE seq = ?", [target])
    elif attack == "reordered":  # two validly signed decisions swapped, signatures and all
        (va, sa), (vb, sb) = (
            db.execute("SELECT value, sig FROM events WHERE seq = ?", [s]).fetchone()
            for s in (target, other)
        )
        db.execute("UPDATE events SET value = ?, sig = ? WHERE seq = ?", [vb, sb, target])
        db.execute("UPDATE events SET value = ?, sig = ? WHERE seq = ?", [va, sa, other])
    else:  # a validly signed event copied into the middle: later offsets shift by one
        db.execute("UPDATE events SET seq = seq + 1000000 WHERE seq > ?", [target])
        db.execute("UPDATE events SET seq = seq - 999999 WHERE seq > 1000000")
        db.execute(
            "INSERT INTO events (seq, topic, key, ts, value, sig) SELECT "
            "?, topic, key, ts, value, sig FROM events WHERE seq = ?",
            [target + 1, rows[0][0]],
        )
    db.close()
    out = keel(demo, "audit", "verify", "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and not doc["ok"], doc
    found = {(p["area"], p["kind"]) for p in doc["problems"]}
    assert ("checkpoint", "rewritten") in found or ("checkpoint", "truncated") in found, found
    if attack == "tampered":
        assert ("signature", "bad-signature") in found
