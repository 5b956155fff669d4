"""Issue 35: views snapshots in the artifact store, recorded on the log. A fresh audit API pod
that shares only the log (Kafka) and the object store (S3 on SeaweedFS) with the projector's
host, no home and no views, finds the newest snapshot from its ViewsSnapshotted event, fetches
and verifies it, folds only the tail and answers as the original; a snapshot whose object was
altered in the store is refused, saying why, and the replica is folded from the log instead."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts.s3 import S3ArtifactStore
from keel.audit import snapshot as sn
from keel.audit import snapshot_store as ss
from keel.audit.freshness import WatchedViews
from keel.settings import Settings
from keel.views.sqlite import SqliteViewStore
from tests.integration.test_audit_snapshot import model, serving_model, settings_of
from tests.integration.test_checkpoint_guard_kafka import append, signed_log
from tests.integration.test_trail_kafka import Signed, keel

pytestmark = pytest.mark.integration
HISTORY, TAIL = 30, 6  # the last deployment to staging: model 35 (odd i)


@pytest.fixture(scope="module")
def stored(
    kafka_bootstrap: str,
    redis_url: str,
    s3_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Signed, dict[str, str], dict[str, Any]]]:
    """HISTORY signed deployments folded and checkpointed; `keel audit snapshot` on that host
    (artifacts in S3); then TAIL more deployments nobody folded."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3_env.items():  # the in-process store and the watcher process read them
            mp.setenv(k, v)
        s, env = signed_log(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("ss"), HISTORY)
        env.update(s3_env, KEEL_ARTIFACTS=f"s3://keel-contract/{uuid.uuid4().hex[:12]}")
        # a plain bucket (made by the harness's operator here), where an object can be altered
        S3ArtifactStore(env["KEEL_ARTIFACTS"]).close()
        out = keel(env, "audit", "snapshot", "--json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["stored"], doc  # a shared log: into the artifact store too
        append(kafka_bootstrap, s, range(HISTORY, HISTORY + TAIL))
        yield s, env, doc


def pod(env: dict[str, str], where: Path) -> Settings:
    """Another machine: its own empty home, the views namespace empty (no projector views)."""
    where.mkdir()
    return settings_of(env).model_copy(
        update={
            "home": where,
            "views": env["KEEL_VIEWS"] + "pod:",
            "artifacts": env["KEEL_ARTIFACTS"],
        }
    )


def test_a_fresh_pod_starts_from_the_recorded_snapshot_and_folds_only_the_tail(
    stored: tuple[Signed, dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel_services.audit.http import create_app, replica_path

    _s, env, doc = stored
    settings = pod(env, tmp_path / "pod")
    name = Path(doc["snapshot"]).stem
    with bootstrap(settings) as rt:
        found = ss.recorded(rt)
        assert [e.name for e in found] == [name]
        assert found[0].views_artifact == doc["stored"]["views"]
        with TestClient(create_app(rt)) as api:
            r = api.get("/v1/serving/f/staging?at=2030-01-01")
        replica = replica_path(rt)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["freshness"]["source"] == "replica" and body["freshness"]["lag"] == 0
    assert body["serving"]["model_id"] == model(HISTORY + TAIL - 1)  # as the original answers
    # fetched into the pod's snapshots, verified there, and only the tail folded after it
    assert (sn.snapshot_dir(settings) / f"{name}.note").exists()
    views = SqliteViewStore(replica)
    folded = sum(views.tracking("audit").values()) - doc["events"]
    assert 2 * TAIL <= folded < 2 * TAIL + 10  # (+ commit markers between batches)
    views.close()


def test_a_snapshot_altered_in_the_store_is_refused_saying_why(
    stored: tuple[Signed, dict[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    _s, env, doc = stored
    settings = pod(env, tmp_path / "pod")
    store = S3ArtifactStore(env["KEEL_ARTIFACTS"])
    key = store.key_of(doc["stored"]["views"])
    original = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01  # one byte of one view changed in the object store
    store.s3.put_object(Bucket=store.bucket, Key=key, Body=bytes(altered))
    try:
        watched = WatchedViews(
            settings, tmp_path / "replica.db", snapshots=sn.snapshot_dir(settings)
        )
        try:
            start = watched.start or {}
            assert start["snapshot"] is None and start["events"] == 0
            (why,) = start["refused"]
            name = Path(doc["snapshot"]).stem
            assert f"snapshot {name} in the artifact store refused" in why
            assert doc["stored"]["views"][:12] in why, why  # which object, and why
            assert not list(sn.snapshot_dir(settings).glob("views-*"))  # nothing placed
            views = SqliteViewStore(watched.replica)  # folded from the log: still right
            assert serving_model(views) == model(HISTORY + TAIL - 1)
            assert sum(views.tracking("audit").values()) >= 2 * (HISTORY + TAIL)
        finally:
            watched.close()
    finally:
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=original)
        store.close()


def test_the_trail_with_recorded_snapshots_verifies(
    stored: tuple[Signed, dict[str, str], dict[str, Any]],
) -> None:
    """The snapshot's ArtifactRecorded and ViewsSnapshotted are signed by the audit key, which
    may write them: verify finds no forged or unsigned record among them."""
    _s, env, _doc = stored
    # the synthetic deployments announce artifacts no store holds: the catalog is left out
    out = keel(env, "audit", "verify", "--json", "--skip", "artifacts")
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["events"] == report["signed"]
