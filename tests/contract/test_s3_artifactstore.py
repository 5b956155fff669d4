"""The ArtifactStore contract on a real S3-compatible server (SeaweedFS from the launcher)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.artifacts.s3 import S3ArtifactStore
from keel.artifacts.store import ArtifactConflict
from tests.contract.artifactstore_contract import ArtifactStoreContract, spec

pytestmark = pytest.mark.integration


class TestS3ArtifactStore(ArtifactStoreContract):
    @pytest.fixture
    def store(self, s3_url: str) -> Iterator[S3ArtifactStore]:
        s = S3ArtifactStore(s3_url)
        yield s
        s.close()

    # An attacker holding the bucket's admin credentials writes past Keel's If-None-Match.
    def corrupt(self, store: S3ArtifactStore, artifact_id: str, data: bytes) -> None:
        store.s3.put_object(Bucket=store.bucket, Key=store.key_of(artifact_id), Body=data)

    def lose(self, store: S3ArtifactStore, artifact_id: str) -> None:
        store.s3.delete_object(Bucket=store.bucket, Key=store.key_of(artifact_id))


def test_two_stores_share_artifacts_by_id(s3_url: str) -> None:
    """Services on different machines: what one stores, another reads and verifies."""
    a, b = S3ArtifactStore(s3_url), S3ArtifactStore(s3_url)
    aid = a.put_bytes(spec("model", seed=7), b"weights").info.id
    assert b.read_bytes(aid) == b"weights" and b.info(aid).kind == "model"
    with pytest.raises(ArtifactConflict):
        b.put_bytes(spec("model", seed=7), b"other weights")
    assert a.read_bytes(aid) == b"weights"


def test_a_put_that_died_before_its_catalog_row_is_completed(s3_url: str) -> None:
    """Bytes placed, meta never written (killed in between): the next put finishes it."""
    store = S3ArtifactStore(s3_url)
    s = spec("dataset", n=1)
    store.s3.put_object(Bucket=store.bucket, Key=store.key_of(s.id), Body=b"rows", IfNoneMatch="*")
    assert not store.exists(s.id)
    again = store.put_bytes(s, b"rows")
    assert again.created and store.read_bytes(s.id) == b"rows" and store.unannounced(s.id)


def test_no_credentials_no_access(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    S3ArtifactStore(s3_url).put_bytes(spec(n=2), b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    monkeypatch.setenv("KEEL_PRINCIPAL", "nobody")  # no keys of its own in the stack's secrets
    from keel.artifacts.store import ArtifactError

    with pytest.raises(ArtifactError, match="object store refused"):
        S3ArtifactStore(s3_url).info(spec(n=2).id)
