"""Issue 35: the projector service's periodic snapshots are handed to the artifact store (the
runner passes keel.audit.snapshot_store.record on a shared log): each snapshot written goes to
`stored`, and a store that fails (the object store away) costs the local snapshot nothing.
Real SQLite, real keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.audit import snapshot as sn
from tests.faults.test_projector_kill import signed_project
from tests.integration.test_snapshot_embedded import folded

pytestmark = pytest.mark.integration


def test_each_periodic_snapshot_is_stored_and_a_failing_store_loses_none(tmp_path: Path) -> None:
    signer, _ = signed_project(tmp_path)
    log, views = folded(tmp_path, signer, 20)
    handed: list[Path] = []
    periodic = sn.Periodic(views, tmp_path / "snaps", signer, every=0.0, stored=handed.append)
    made = periodic.maybe(idle=60.0)
    assert made is not None and handed == [made]

    def away(_: Path) -> None:
        raise ConnectionError("the object store is away")

    folded(tmp_path, signer, 25, log)
    failing = sn.Periodic(views, tmp_path / "snaps2", signer, every=0.0, stored=away)
    kept = failing.maybe(idle=60.0)
    assert kept is not None and kept.exists() and kept.with_suffix(".note").exists()
