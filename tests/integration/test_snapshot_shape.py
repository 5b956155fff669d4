"""A views snapshot of an older shape (recorded before an upgrade that changed what the views
hold, e.g. decision 0035's shape 5) is refused like any snapshot that does not verify, so an
audit API replica folds the log instead of starting from views the projector then refuses to
fold on. Real SQLite, real keys."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.audit import current, keys
from keel.audit import snapshot as sn
from keel.views.port import Put
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import signed_project
from tests.integration.test_snapshot_embedded import folded

pytestmark = pytest.mark.integration


def test_a_snapshot_of_views_folded_by_an_older_shape_is_refused(tmp_path: Path) -> None:
    signer, _ = signed_project(tmp_path)
    _, views = folded(tmp_path, signer, 10)
    views.apply([Put(keys.SHAPE, {"version": current.SHAPE_VERSION - 1})])  # an older Keel's
    # signed as write() signs it: digest, signature and checkpoints all right
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    db = snaps / "views-000000000000001-1.db"
    views._db.execute("VACUUM INTO ?", [str(db)])
    state = sn.read_state(SqliteViewStore(db))
    digest, nbytes = sn.file_digest(db)
    text = sn.manifest_text(
        digest, nbytes, state.positions, state.trees, datetime.now(UTC), signer.trust.digest()
    )
    db.with_suffix(".note").write_text(sn.cp.sign(text, signer))
    old = current.SHAPE_VERSION - 1
    with pytest.raises(sn.SnapshotRefused, match=f"of shape {old}, this Keel folds shape"):
        sn.load(db.with_suffix(".note"), tmp_path / "replica.db", signer.trust)
    started = sn.restore(snaps, tmp_path / "replica2.db", signer.trust)
    assert started.snapshot is None and len(started.refused) == 1  # the replica folds the log
    assert sn.open_newest(snaps, signer.trust) is None
