"""Put an artifact and announce it on the log with ArtifactRecorded (only when newly stored)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from keel.artifacts.ids import ArtifactSpec, canonical_json
from keel.artifacts.store import ArtifactInfo

if TYPE_CHECKING:
    from keel.artifacts.port import ArtifactStore
from keel.events import Event, envelope
from keel.events.generated import ArtifactRecorded


def recorded_event(
    info: ArtifactInfo,
    *,
    service: str,
    code_version: str,
    actor: str,
    correlation_id: str,
    occurred_at: datetime | None = None,
    causation_id: str | None = None,
) -> ArtifactRecorded:
    return ArtifactRecorded(
        envelope=envelope(
            "ArtifactRecorded",
            subject=info.id,
            service=service,
            code_version=code_version,
            actor=actor,
            correlation_id=correlation_id,
            occurred_at=occurred_at,
            causation_id=causation_id,
        ),
        artifact_id=info.id,
        kind=info.kind,
        parents=info.parents,
        code_version=info.code_version,
        params_json=canonical_json(info.params),
        digest=info.digest,
        size=info.size,
        location=info.location,
    )


def record(
    store: ArtifactStore,
    spec: ArtifactSpec,
    data: bytes | Path,
    publish: Callable[[list[Event]], object],
    *,
    service: str,
    actor: str,
    correlation_id: str,
    occurred_at: datetime | None = None,
    causation_id: str | None = None,
) -> tuple[ArtifactInfo, bool]:
    """Store and announce. A repeated put of the same bytes announces nothing, unless the first
    put's ArtifactRecorded never reached the log (the store's outbox says so): then it does."""
    result = store.put_file(spec, data) if isinstance(data, Path) else store.put_bytes(spec, data)
    if result.created or store.unannounced(result.info.id):
        publish(
            [
                recorded_event(
                    result.info,
                    service=service,
                    code_version=spec.code_version,
                    actor=actor,
                    correlation_id=correlation_id,
                    occurred_at=occurred_at,
                    causation_id=causation_id,
                )
            ]
        )
        store.announced(result.info.id)
    return result.info, result.created
