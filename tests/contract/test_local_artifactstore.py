from __future__ import annotations

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
