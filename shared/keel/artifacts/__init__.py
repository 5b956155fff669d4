"""Content-addressed, write-once artifacts with lineage."""

from keel.artifacts.ids import ArtifactSpec, artifact_id, canonical_json, file_digest
from keel.artifacts.store import (
    ArtifactConflict,
    ArtifactCorrupted,
    ArtifactInfo,
    ArtifactMissing,
    ArtifactNotFound,
    LocalArtifactStore,
)

__all__ = [
    "ArtifactConflict",
    "ArtifactCorrupted",
    "ArtifactInfo",
    "ArtifactMissing",
    "ArtifactNotFound",
    "ArtifactSpec",
    "LocalArtifactStore",
    "artifact_id",
    "canonical_json",
    "file_digest",
]
