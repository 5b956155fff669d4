"""Views snapshots on the embedded stores (keel.audit.snapshot): the projector service's periodic
snapshots, what a snapshot must stand at, and the checks a loaded snapshot passes, down to the
views inside a file whose digest and signature are right. Real SQLite, real keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.audit import snapshot as sn
from keel.audit.projector import Projector
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.errors import KeelError
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Signer
from keel.views.port import Put
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import events, signed_project

pytestmark = pytest.mark.integration
CODEC = Codec(load_registry())


def folded(tmp: Path, signer: Signer, upto: int, log: SqliteEventLog | None = None) -> tuple:
    log = log or SqliteEventLog(tmp / "log.db")
    have = sum(log.end_offsets(["artifacts", "registry"]).values())
    log.append(sign_all(signer, CODEC, [e for i in range(have // 2, upto) for e in events(i)]))
    views = SqliteViewStore(tmp / "views.db")
    Projector(log, views, CODEC, signer=signer).run()  # signs a checkpoint at its end
    return log, views


def test_the_projector_services_periodic_snapshots_verify(tmp_path: Path) -> None:
    signer, _ = signed_project(tmp_path)
    log, views = folded(tmp_path, signer, 30)
    periodic = sn.Periodic(views, tmp_path / "snaps", signer, every=0.0)
    first = periodic.maybe(idle=60.0)
    assert first is not None and periodic.maybe(idle=60.0) is None  # nothing moved since
    # one file, in WAL mode (a replica opening its copy switches no journal mode)
    assert first.read_bytes()[18:20] == b"\x02\x02" and not Path(f"{first}-wal").exists()
    folded(tmp_path, signer, 35, log)
    second = periodic.maybe(idle=60.0)
    assert second is not None and sn.listed(tmp_path / "snaps")[0] == second.with_suffix(".note")
    manifest = sn.load(second.with_suffix(".note"), tmp_path / "replica.db", signer.trust)
    assert manifest.positions == views.tracking("audit")
    replica = SqliteViewStore(tmp_path / "replica.db")
    assert replica.snapshot() == views.snapshot()  # the views, entry for entry
    # a service without the audit key takes none
    assert sn.Periodic(views, tmp_path / "x", None, every=0.0).maybe(idle=60.0) is None


def test_a_snapshot_stands_at_a_checkpoint(tmp_path: Path) -> None:
    signer, _ = signed_project(tmp_path)
    log, views = folded(tmp_path, signer, 10)
    log.append(sign_all(signer, CODEC, events(10)))
    Projector(log, views, CODEC, signer=signer).run(checkpoint=False)  # past its checkpoint
    with pytest.raises(KeelError, match="past their last checkpoint") as refused:
        sn.write(views, tmp_path / "snaps", signer)
    assert "keel audit project" in refused.value.hint
    assert sn.listed(tmp_path / "snaps") == []  # and nothing was left behind


def test_views_not_at_their_signed_checkpoint_are_refused(tmp_path: Path) -> None:
    """A file whose digest and signature are right (e.g. the audit key's holder signed views
    edited after the fold) but whose trees are not those of the checkpoint notes it holds."""
    signer, _ = signed_project(tmp_path)
    _, views = folded(tmp_path, signer, 10)
    trees = views.get("audit:trees") or {}
    key = sorted(trees)[0]
    forged = {**trees, key: {**trees[key], "size": trees[key]["size"] - 1}}
    views.apply([Put("audit:trees", forged)])
    # sign it as write() would, skipping only its own check of the notes
    tmp = tmp_path / "snaps"
    tmp.mkdir()
    db = tmp / "views-000000000000001-1.db"
    views._db.execute("VACUUM INTO ?", [str(db)])
    state = sn.read_state(SqliteViewStore(db))
    digest, nbytes = sn.file_digest(db)
    from datetime import UTC, datetime

    text = sn.manifest_text(
        digest, nbytes, state.positions, state.trees, datetime.now(UTC), signer.trust.digest()
    )
    db.with_suffix(".note").write_text(sn.cp.sign(text, signer))
    with pytest.raises(sn.SnapshotRefused, match="is not the one its checkpoint signed"):
        sn.load(db.with_suffix(".note"), tmp_path / "replica.db", signer.trust)


@pytest.mark.unit
def test_when_the_projector_service_takes_a_snapshot() -> None:
    every = 600.0
    assert not sn.due(1000.0, 0.0, 5, 5, idle=60.0, every=every)  # nothing moved
    assert not sn.due(500.0, 0.0, 5, 6, idle=60.0, every=every)  # too soon
    assert not sn.due(700.0, 0.0, 5, 6, idle=1.0, every=every)  # batches are flowing
    assert sn.due(700.0, 0.0, 5, 6, idle=sn.IDLE, every=every)
    assert sn.due(4 * every, 0.0, 5, 6, idle=0.0, every=every)  # a log that never rests
    assert not sn.due(4 * every, 0.0, 5, 6, idle=0.0, every=every, busy_ok=False)  # Redis


@pytest.mark.unit
def test_a_manifest_reads_back_and_names_no_tree() -> None:
    from datetime import UTC, datetime

    from keel.audit import checkpoint as cp

    text = sn.manifest_text(
        "ab" * 32,
        10,
        {("registry", 0): 7},
        {("registry", 0): (7, b"r" * 32)},
        datetime(2026, 1, 1, tzinfo=UTC),
        "k",
    )
    note = text + "\n\u2014 keel-audit-x AAAA\n"
    m = sn.parse_manifest(note)
    assert (m.digest, m.nbytes, m.events) == ("ab" * 32, 10, 7)
    assert m.trees == {("registry", 0): (7, b"r" * 32)}
    with pytest.raises(ValueError, match="Keel tree origin"):
        cp.parse(note)  # a manifest never passes for a checkpoint
    with pytest.raises(ValueError, match="not a views snapshot manifest"):
        sn.parse_manifest(note.replace(sn.ORIGIN, "keel/registry/0"))
