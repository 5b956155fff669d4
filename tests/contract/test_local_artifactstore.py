from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.artifacts import LocalArtifactStore
from tests.contract.artifactstore_contract import ArtifactStoreContract


class TestLocalArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LocalArtifactStore]:
        s = LocalArtifactStore(tmp_path / "artifacts")
        yield s
        s.close()

    def corrupt(self, store: LocalArtifactStore, artifact_id: str, data: bytes) -> None:
        path = store.path_of(artifact_id)
        os.chmod(path, 0o644)
        path.write_bytes(data)

    def lose(self, store: LocalArtifactStore, artifact_id: str) -> None:
        store.path_of(artifact_id).unlink()

    def test_a_put_that_died_before_its_catalog_row_is_announced_by_the_next(
        self, store: LocalArtifactStore, tmp_path: Path
    ) -> None:
        """The MLflow bridge killed mid-delivery (CI, session 12): the file was linked, the
        process died before the catalog row and the outbox entry, and MLflow's retry stored the
        same bytes again. The retry found the file, so it called the bytes old and announced
        nothing: verify then found a catalog entry no ArtifactRecorded announces."""
        from tests.contract.artifactstore_contract import spec

        aid = store.put_bytes(spec(n=8), b"left behind").info.id
        # the state the dead put left: the file, no catalog row, no outbox entry
        store._db.execute("DELETE FROM artifacts WHERE id = ?", [aid])
        store._db.execute("DELETE FROM unannounced WHERE id = ?", [aid])
        assert store.path_of(aid).exists()
        again = store.put_bytes(spec(n=8), b"left behind")
        assert not again.created  # the bytes were there
        assert store.unannounced(aid)  # but no announcement can have been published
