"""SIGKILL the projector at 20 random points during a 200k-event fold of signed events,
restarting it each time: the final views equal a clean fold exactly (Merkle trees included), no
event is applied twice, and the checkpoint the last run published states the clean trees."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keel.audit.anchors import NOTES
from keel.audit.projector import Projector
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.events import envelope
from keel.events import generated as g
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer, create_key, load_private, load_trust
from keel.views.sqlite import SqliteViewStore
from tests.faults.killing import clean_env, kill_repeatedly

pytestmark = pytest.mark.faults
KEEL = str(Path(sys.executable).with_name("keel"))
EVENTS = 200_000
KILLS = 20


def events(i: int, at: datetime | None = None) -> list[Any]:
    """Deployment i (alternating prod and staging) and its model's ArtifactRecorded, at `at`
    (default: 2024-01-01 plus i minutes)."""
    at = at or datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)

    def env(kind: str, subject: str) -> g.Envelope:
        return envelope(
            kind,
            subject=subject,
            service="t",
            code_version="c",
            actor="t",
            correlation_id="c",
            occurred_at=at,
        )

    model, parent = f"{i:064x}", f"{(i % 50) + 10**9:064x}"
    return [
        g.ArtifactRecorded(
            envelope=env("ArtifactRecorded", model),
            artifact_id=model,
            kind="model",
            parents=(parent,),
            code_version="c",
            params_json="{}",
            digest="d" * 64,
            size=1,
            location="x",
        ),
        g.ModelDeployed(
            envelope=env("ModelDeployed", "f/prod"),
            family="f",
            env=("prod", "staging")[i % 2],
            model_id=model,
            manifest_id="m" * 64,
            # not "promotion": verify holds a promotion-kind deployment to cite its promotion
            # (keel.audit.citations), and these synthetic ones have none
            kind="rollback",
        ),
    ]


def signed_project(root: Path) -> tuple[Signer, dict[str, str]]:
    """Keys for the test identity and the projector; env for `keel` to find them."""
    project = root / "keel.toml"
    project.write_text('[identities.t]\nemits = ["*"]\n')
    for identity in ("t", "audit"):
        create_key(identity, root / "keys.toml", root / "private")
    trust = load_trust(root / "keys.toml", project)
    env = {"KEEL_PROJECT": str(project), "KEEL_KEYS_DIR": str(root / "private")}
    return Signer(trust, load_private(root / "private")), env


def last_checkpoint(log: SqliteEventLog, codec: Codec) -> dict[str, int]:
    from keel.events import decode_event

    cps = [decode_event(codec, r.value) for r in log.read(["audit"])]
    return {f"{t.topic}/{t.partition}": t.size for t in cps[-1].trees}


def test_projector_survives_sigkill_exactly(tmp_path: Path) -> None:
    codec = Codec(load_registry())
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    signer, keys_env = signed_project(tmp_path)
    log = SqliteEventLog(a / "log.db")
    for start in range(0, EVENTS // 2, 2000):
        log.append(
            sign_all(signer, codec, [e for i in range(start, start + 2000) for e in events(i)])
        )
    log.close()
    shutil.copytree(a, b)

    # the clean fold
    log_b, views_b = SqliteEventLog(b / "log.db"), SqliteViewStore(b / "views.db")
    Projector(log_b, views_b, codec, signer=signer).run()
    clean = views_b.snapshot()

    # the fold killed 20 times, at random points
    probe = SqliteViewStore(a / "views.db")
    killed = kill_repeatedly(
        clean_env(KEEL_HOME=str(a), **keys_env),
        lambda: int((probe.get("projector:stats") or {}).get("applied", 0)),
        EVENTS,
        KILLS,
        seed=20,
    )
    probe.close()
    log_a, views_a = SqliteEventLog(a / "log.db"), SqliteViewStore(a / "views.db")
    Projector(log_a, views_a, codec, signer=signer).run()
    after = views_a.snapshot()

    assert killed == KILLS, f"only {killed} kills landed before the fold finished"
    assert after["docs"]["projector:stats"]["applied"] == EVENTS  # each event exactly once
    # the last checkpoint's note carries the time it was signed: its tree is compared below
    assert {k: v for k, v in after["docs"].items() if k != NOTES} == {
        k: v for k, v in clean["docs"].items() if k != NOTES
    }
    assert after["indexes"] == clean["indexes"]
    assert after["sets"] == clean["sets"]  # applied IDs; no adopted link left pending
    assert after["tracking"] == clean["tracking"]
    assert after["docs"]["audit:trees"] == clean["docs"]["audit:trees"]
    assert last_checkpoint(log_a, codec) == last_checkpoint(log_b, codec)
    assert sum(last_checkpoint(log_a, codec).values()) == EVENTS
