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
