"""The ArtifactStore port: write-once, content-addressed bytes with a catalog and lineage.

Adapters: LocalArtifactStore (a directory, the default) and S3ArtifactStore (any S3-compatible
server, `KEEL_ARTIFACTS=s3://bucket/prefix`). Both pass tests/contract/artifactstore_contract.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from keel.artifacts.ids import ArtifactSpec
from keel.artifacts.store import ArtifactError, ArtifactInfo, LineageNode, PutResult


class ArtifactStore(Protocol):
    def put_bytes(self, spec: ArtifactSpec, data: bytes) -> PutResult: ...

    def put_file(self, spec: ArtifactSpec, path: Path) -> PutResult: ...

    def put_stream(self, spec: ArtifactSpec, source: BinaryIO) -> PutResult:
        """Store the bytes under spec.id in bounded memory. Same bytes again: created False.
        Other bytes under the same ID: ArtifactConflict, nothing changes. A kind that is not a
        short name (store.check_kind): InvalidKind, before anything is written."""
        ...

    def unannounced(self, artifact_id: str) -> bool:
        """True while the artifact's ArtifactRecorded is not confirmed on the log (outbox)."""
        ...

    def announced(self, artifact_id: str) -> None: ...

    def resolve(self, ref: str) -> str:
        """A full ID from a full ID or a unique prefix of >= 8 hex characters."""
        ...

    def info(self, ref: str) -> ArtifactInfo: ...

    def exists(self, artifact_id: str) -> bool: ...

    def read_bytes(self, ref: str, recorded: str | None = None) -> bytes:
        """The bytes, verified against the catalog's digest and, when given, `recorded`."""
        ...

    def read_recorded(self, artifact_id: str, recorded: str) -> bytes: ...

    def copy_to(self, ref: str, out: BinaryIO, recorded: str | None = None) -> str:
        """Stream the bytes into `out` in bounded memory, verified; returns their digest."""
        ...

    def blob_digest(self, artifact_id: str) -> str | None:
        """sha256 of the stored bytes as they are now (None: gone), for `keel audit verify`."""
        ...

    def verify(
        self, ref: str | None = None
    ) -> Iterator[tuple[ArtifactInfo, ArtifactError | None]]: ...

    def all_ids(self) -> list[str]: ...

    def lineage(
        self, ref: str, direction: str = "both", max_depth: int = 10
    ) -> list[LineageNode]: ...

    def location_of(self, artifact_id: str) -> str: ...

    def close(self) -> None: ...


def open_artifacts(url: str, home_dir: Path, principal: str = "") -> ArtifactStore:
    """`s3://bucket/prefix` -> S3ArtifactStore (as `principal` on a secured stack); empty ->
    the local store in KEEL_HOME; a path (or file:// URL) -> a local store there."""
    from keel.artifacts.store import LocalArtifactStore

    if url.startswith("s3://"):
        from keel.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(url, principal=principal)
    if not url:
        return LocalArtifactStore(home_dir)
    return LocalArtifactStore(Path(url.removeprefix("file://")))
