"""SIGKILL the projector at 20 random points during a 200k-event fold, restarting it each time:
the final views equal a clean fold exactly, no event is applied twice, and the audit chain is
the same chain."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.events import envelope
from keel.events import generated as g
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.views.sqlite import SqliteViewStore
from tests.faults.killing import clean_env, kill_repeatedly

pytestmark = pytest.mark.faults
KEEL = str(Path(sys.executable).with_name("keel"))
EVENTS = 200_000
KILLS = 20


def events(i: int) -> list[Any]:
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)

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
            kind="promotion",
        ),
    ]


def chain(log: SqliteEventLog, codec: Codec) -> list[tuple[int, str]]:
    from keel.events import decode_event

    return [
        (link.seq, link.hash)
        for link in (decode_event(codec, r.value) for r in log.read(["audit"]))
    ]


def test_projector_survives_sigkill_exactly(tmp_path: Path) -> None:
    codec = Codec(load_registry())
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    log = SqliteEventLog(a / "log.db")
    for start in range(0, EVENTS // 2, 2000):
        log.append([to_outgoing(codec, e) for i in range(start, start + 2000) for e in events(i)])
    log.close()
    shutil.copytree(a, b)

    # the clean fold
    log_b, views_b = SqliteEventLog(b / "log.db"), SqliteViewStore(b / "views.db")
    Projector(log_b, views_b, codec).run()
    clean = views_b.snapshot()

    # the fold killed 20 times, at random points
    probe = SqliteViewStore(a / "views.db")
    killed = kill_repeatedly(
        clean_env(KEEL_HOME=str(a)),
        lambda: int((probe.get("projector:stats") or {}).get("applied", 0)),
        EVENTS,
        KILLS,
        seed=20,
    )
    probe.close()
    log_a, views_a = SqliteEventLog(a / "log.db"), SqliteViewStore(a / "views.db")
    Projector(log_a, views_a, codec).run()
    after = views_a.snapshot()

    assert killed == KILLS, f"only {killed} kills landed before the fold finished"
    assert after["docs"]["projector:stats"]["applied"] == EVENTS  # each event exactly once
    assert after["docs"] == clean["docs"]
    assert after["indexes"] == clean["indexes"]
    assert after["sets"] == clean["sets"]  # applied IDs; no adopted link left pending
    assert after["tracking"] == clean["tracking"]
    assert chain(log_a, codec) == chain(log_b, codec)
