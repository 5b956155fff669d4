"""Issue 35 / 37: the audit API on Kafka starts from a views snapshot verified against the audit
key and the checkpoints it holds, then folds only the tail; a tampered snapshot is refused with
a clear error and the replica is folded from the log instead; while the replica starts, the API
answers from the projector's Redis views and says how stale they are. Real Kafka and Redis."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from keel.audit import snapshot as sn
from keel.audit import view_queries as vq
from keel.audit.freshness import WatchedViews
from keel.settings import Settings
from keel.signing import Signer, load_private, load_trust
from keel.views.sqlite import SqliteViewStore
from tests.integration.test_checkpoint_guard_kafka import append, signed_log
from tests.integration.test_fresh_views import time_after_all
from tests.integration.test_trail_kafka import Signed, keel

pytestmark = pytest.mark.integration
HISTORY, TAIL = 40, 6


def model(i: int) -> str:
    return f"{i:064x}"


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(
        home=Path(env["KEEL_HOME"]),
        project=Path(env["KEEL_PROJECT"]),
        bus=env["KEEL_BUS"],
        views=env["KEEL_VIEWS"],
        keys_dir=Path(env["KEEL_KEYS_DIR"]),
        admin_dir=Path(env["KEEL_ADMIN_DIR"]),
    )


def trust_of(s: Signed) -> Any:
    return load_trust(s.project.with_name("keys.toml"), s.project)


@pytest.fixture(scope="module")
def trail(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Signed, dict[str, str], Path]:
    """HISTORY signed deployments folded into Redis and checkpointed (`keel audit project`),
    a snapshot of those views (`keel audit snapshot`), then TAIL more deployments no one has
    folded yet (Redis views stay behind: no projector service runs)."""
    s, env = signed_log(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("snap"), HISTORY)
    out = keel(env, "audit", "snapshot", "--json")
    assert out.returncode == 0, out.stderr
    made = Path(json.loads(out.stdout)["snapshot"])
    assert made.exists() and made.with_suffix(".note").exists()
    assert made.parent == sn.snapshot_dir(settings_of(env))
    append(kafka_bootstrap, s, range(HISTORY, HISTORY + TAIL))
    return s, env, made


def serving_model(views: Any) -> str | None:
    # events(i) deploys model i to staging for odd i, prod for even i
    doc = vq.serving_at(views, "f", "staging", time_after_all())["serving"] or {}
    return doc.get("model_id")


def test_a_replica_starts_from_the_snapshot_and_folds_only_the_tail(
    trail: tuple[Signed, dict[str, str], Path], tmp_path: Path
) -> None:
    _s, env, made = trail
    manifest = sn.parse_manifest(made.with_suffix(".note").read_text())
    replica = tmp_path / "replica.db"
    watched = WatchedViews(settings_of(env), replica, snapshots=made.parent)
    try:
        start = {k: v for k, v in (watched.start or {}).items() if k != "seconds"}
        assert start == {"snapshot": made.stem, "events": manifest.events, "refused": []}
        views = SqliteViewStore(replica)
        assert serving_model(views) == model(HISTORY + TAIL - 1)  # the tail is folded too
        # it folded from the snapshot's positions: the tail's 2 x TAIL events, not the history
        folded = sum(views.tracking("audit").values()) - manifest.events
        assert 2 * TAIL <= folded < 2 * TAIL + 10  # (+ commit markers between batches)
        assert watched.check().lag == 0
    finally:
        watched.close()


def tampered(made: Path, where: Path, how: str, s: Signed) -> Path:
    """A copy of the snapshot in `where`, altered as `how` says; returns its manifest."""
    where.mkdir()
    db, note = where / made.name, where / made.with_suffix(".note").name
    shutil.copyfile(made, db)
    shutil.copyfile(made.with_suffix(".note"), note)
    if how == "views":  # one byte of the views file changed (a document edited in place)
        data = bytearray(db.read_bytes())
        data[len(data) // 2] ^= 0x01
        db.write_bytes(bytes(data))
    elif how == "manifest":  # the signed manifest made to say other positions
        text = note.read_text()
        note.write_text(re.sub(r"(position \S+ )(\d+)", lambda m: m[1] + "999", text, count=1))
    elif how == "other key":  # re-signed by a key that is not the audit key
        body = note.read_text().partition("\n\n")[0] + "\n"
        signer = Signer(trust_of(s), load_private(s.keys_dir))
        note.write_text(sn.cp.sign(body, signer, identity="t"))
    return note


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("views", "the views file was altered"),
        ("manifest", "does not match the note (altered)"),
        ("other key", "not signed by any audit key"),
    ],
)
def test_a_tampered_snapshot_is_refused(
    trail: tuple[Signed, dict[str, str], Path], tmp_path: Path, how: str, said: str
) -> None:
    s, _env, made = trail
    note = tampered(made, tmp_path / "snaps", how, s)
    replica = tmp_path / "replica.db"
    with pytest.raises(sn.SnapshotRefused) as refused:
        sn.load(note, replica, trust_of(s))
    assert said in str(refused.value) and note.name in str(refused.value)
    assert "folded from the log instead" in refused.value.hint
    assert not replica.exists()  # nothing of it was loaded
    assert sn.open_newest(note.parent, trust_of(s)) is None  # nor answered from in place


def test_the_api_refuses_a_tampered_snapshot_and_folds_the_log(
    trail: tuple[Signed, dict[str, str], Path], tmp_path: Path
) -> None:
    s, env, made = trail
    note = tampered(made, tmp_path / "snaps", "views", s)
    replica = tmp_path / "replica.db"
    watched = WatchedViews(settings_of(env), replica, snapshots=note.parent)
    try:
        start = watched.start or {}
        assert start["snapshot"] is None and start["events"] == 0
        assert len(start["refused"]) == 1 and "the views file was altered" in start["refused"][0]
        views = SqliteViewStore(replica)  # folded from the log's beginning: still right
        assert serving_model(views) == model(HISTORY + TAIL - 1)
        assert sum(views.tracking("audit").values()) >= 2 * (HISTORY + TAIL)
    finally:
        watched.close()


@pytest.mark.parametrize(
    ("kept", "first_source"),
    [
        ("redis", "projector views (replica starting)"),
        ("none", "snapshot (replica starting)"),
    ],
)
def test_a_restart_under_query_load_answers_every_request(
    trail: tuple[Signed, dict[str, str], Path], tmp_path: Path, kept: str, first_source: str
) -> None:
    """A fresh API (no replica on disk: a new pod) answers at once, then from its replica once
    it reached the log's end: from the projector's Redis views where the deployment has them,
    else from the newest verified snapshot read where it lies; either way stale by the tail,
    and saying how stale. A bounded loop of requests: every one answered."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel_services.audit.http import create_app

    _s, env, made = trail
    settings = settings_of(env).model_copy(update={"home": tmp_path / "pod"})
    if kept == "none":  # a deployment without the projector's views: an empty namespace
        settings = settings.model_copy(update={"views": env["KEEL_VIEWS"] + "none:"})
    (tmp_path / "pod").mkdir()
    snaps = sn.snapshot_dir(settings)
    snaps.parent.mkdir(parents=True)
    shutil.copytree(made.parent, snaps)  # the new pod's snapshots (a shared store, say)
    answers: list[tuple[int, str, int, str | None, str | None]] = []
    with bootstrap(settings) as rt, TestClient(create_app(rt)) as api:
        for _ in range(20_000):  # bounded: the replica is ready long before
            r = api.get("/v1/serving/f/staging?at=2030-01-01")
            doc = r.json() if r.status_code == 200 else {}
            fresh = doc.get("freshness", {})
            answers.append(
                (
                    r.status_code,
                    str(fresh.get("source")),
                    int(fresh.get("lag", -1)),
                    r.headers.get("keel-lag"),
                    (doc.get("serving") or {}).get("model_id"),
                )
            )
            if fresh.get("source") == "replica":
                break
    assert all(code == 200 for code, *_ in answers), answers[:3]
    sources = [src for _, src, *_ in answers]
    assert sources[-1] == "replica", "the replica never became ready"
    assert sources[0] == first_source, sources[:3]
    # answers before the replica say how stale they are: the tail is not in them
    for _, src, lag, header, served in answers[:-1]:
        assert src == first_source
        assert lag >= TAIL and header == str(lag)
        assert served == model(HISTORY - 1)
    _, _, lag, header, served = answers[-1]
    assert lag == 0 and header == "0" and served == model(HISTORY + TAIL - 1)
