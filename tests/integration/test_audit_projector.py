"""The projector on the embedded default: answers match the story, rebuilds are identical,
duplicates are applied once, and `audit verify` catches tampering, deletion, reordering and
insertion."""

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


def keel(home: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}, "KEEL_HOME": home}
    return subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)


def test_view_answers_match_the_story(demo: dict[str, Any]) -> None:
    from datetime import datetime

    with bootstrap(Settings(home=Path(demo["home"]), bus="", views=""), create=False) as rt:
        Projector(rt.log, rt.views, rt.codec).run()
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
    settings = Settings(home=Path(demo["home"]), bus="", views="")
    with bootstrap(settings, create=False) as rt:
        Projector(rt.log, rt.views, rt.codec).run()
        before = rt.views.snapshot()
        # the same events appended again (a producer retried): skipped by event_id
        again = [r for r in rt.log.read(["registry", "deployments"])]
        from keel.log.port import OutgoingEvent

        rt.log.append([OutgoingEvent(r.topic, r.key, r.timestamp_ms, r.value) for r in again])
        progress = Projector(rt.log, rt.views, rt.codec).run()
        assert progress.applied == 0 and progress.skipped_duplicates == len(again)
        after_dupes = rt.views.snapshot()
        rt.views.clear()
        Projector(rt.log, rt.views, rt.codec).run()
        rebuilt = rt.views.snapshot()
    for part in ("docs", "indexes"):
        assert rebuilt[part] == after_dupes[part]
        assert {k: v for k, v in before[part].items()} == {k: v for k, v in rebuilt[part].items()}
    assert rebuilt["docs"]["projector:stats"]["applied"] == demo["events"]


def _db(home: str) -> sqlite3.Connection:
    return sqlite3.connect(str(Path(home) / "log.db"), isolation_level=None)


@pytest.mark.parametrize("attack", ["tampered", "deleted", "reordered", "inserted"])
def test_verify_catches_each_kind_of_break(demo: dict[str, Any], attack: str) -> None:
    home = demo["home"]
    ok = keel(home, "audit", "verify", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["ok"], ok.stdout + ok.stderr
    db = _db(home)
    rows = db.execute("SELECT seq FROM events WHERE topic = 'registry' ORDER BY seq").fetchall()
    target = rows[1][0]
    links = db.execute(
        "SELECT seq, value FROM events WHERE topic = 'audit' ORDER BY seq"
    ).fetchall()
    if attack == "tampered":  # flip one byte inside a recorded decision
        value = bytearray(
            db.execute("SELECT value FROM events WHERE seq = ?", [target]).fetchone()[0]
        )
        value[-3] ^= 0x01
        db.execute("UPDATE events SET value = ? WHERE seq = ?", [bytes(value), target])
    elif attack == "deleted":
        db.execute("DELETE FROM events WHERE seq = ?", [target])
    elif attack == "reordered":  # swap two links of the chain
        (a, va), (b, vb) = links[10], links[11]
        db.execute("UPDATE events SET value = ? WHERE seq = ?", [vb, a])
        db.execute("UPDATE events SET value = ? WHERE seq = ?", [va, b])
    else:  # a forged extra link in the chain (a copy of link 11, appended to the audit topic)
        db.execute(
            "INSERT INTO events (seq, topic, key, ts, value) SELECT "
            "(SELECT MAX(seq) + 1 FROM events), topic, key, ts, value FROM events WHERE seq = ?",
            [links[10][0]],
        )
    db.close()
    out = keel(home, "audit", "verify", "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and not doc["ok"], doc
    expected = {
        "tampered": "tampered",
        "deleted": "missing",
        "reordered": "reordered",
        "inserted": "inserted",
    }
    assert doc["break"]["kind"] == expected[attack], doc["break"]
