"""Helpers every service's handlers use: who produces (a Producer: the identity its events are
signed as and the package whose source is its code version), envelopes, storing and checking
artifacts, recording failed user code. In the library so services never import each other.

The library never finds a service by name: each service hands its own Producer (built from
its `__package__`) to these helpers (decision 0025).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from keel.artifacts.codeversion import code_version
from keel.artifacts.ids import ArtifactSpec
from keel.artifacts.recording import record
from keel.artifacts.store import ArtifactError, ArtifactInfo
from keel.events import Envelope, envelope
from keel.events.generated import ArtifactRejected, TrainingFailed
from keel.pipeline import Context
from keel.plugins import UserCodeError


@dataclass(frozen=True)
class Producer:
    """A service as the producer of its events: `name`, the identity its events are signed as
    (keel.signing.DEFAULT_ROLES), and `package`, the service's own package (its `__package__`),
    whose source with the library's is the code version its events and artifacts carry."""

    name: str
    package: str

    @property
    def code_version(self) -> str:
        return _code_version(self.package)

    def __str__(self) -> str:
        return self.name


@cache
def _code_version(package: str) -> str:
    return code_version(package, "keel")


def service_code_version(service: Producer) -> str:
    """Digest of the service's package and the keel library it runs on."""
    return service.code_version


def make_envelope(
    ctx: Context,
    service: Producer,
    event_type: str,
    subject: str,
    at: datetime,
    causation_id: str | None = None,
) -> Envelope:
    return envelope(
        event_type,
        subject=subject,
        service=service.name,
        code_version=service.code_version,
        actor=ctx.actor,
        correlation_id=ctx.correlation_id,
        occurred_at=at,
        causation_id=causation_id,
    )


def store(
    ctx: Context, service: Producer, spec: ArtifactSpec, data: bytes | Path, at: datetime
) -> ArtifactInfo:
    """Store an artifact and announce it (ArtifactRecorded) through the context's bus."""
    info, _ = record(
        ctx.rt.artifacts,
        spec,
        data,
        ctx.publish,
        service=service.name,
        actor=ctx.actor,
        correlation_id=ctx.correlation_id,
        occurred_at=at,
    )
    return info


def rejected_artifact(
    ctx: Context, service: Producer, artifact_id: str, action: str, at: datetime
) -> ArtifactRejected | None:
    """None if the artifact's bytes hash to the digest its signed ArtifactRecorded states;
    otherwise the ArtifactRejected to record (the caller publishes it and refuses)."""
    node = ctx.read.artifact(artifact_id)
    recorded = node["digest"] if node else ""
    try:
        ctx.rt.artifacts.read_recorded(artifact_id, recorded)
        return None
    except ArtifactError as exc:
        return artifact_rejected(
            make_envelope(ctx, service, "ArtifactRejected", artifact_id, at),
            artifact_id,
            action,
            recorded,
            exc,
        )


def artifact_rejected(
    envelope: Envelope, artifact_id: str, action: str, recorded: str, exc: ArtifactError
) -> ArtifactRejected:
    """The one place an ArtifactRejected is built (deploy's check above, serve's refusal to
    load a model): the artifact's bytes do not hash to the digest its ArtifactRecorded states."""
    return ArtifactRejected(
        envelope=envelope,
        artifact_id=artifact_id,
        action=action,
        recorded_digest=recorded,
        actual_digest=getattr(exc, "actual", ""),
        reason=str(exc),
    )


def training_failed(
    ctx: Context,
    service: Producer,
    family: str,
    err: UserCodeError,
    inputs: list[str],
    at: datetime,
    causation_id: str | None = None,
) -> TrainingFailed:
    """The record of user code that raised during a retrain (the caller publishes it)."""
    return failed(
        make_envelope(ctx, service, "TrainingFailed", family, at, causation_id),
        family,
        err.stage,
        err.entry_point,
        err.error,
        err.reason,
        inputs,
    )


def failed(
    envelope: Envelope,
    family: str,
    stage: str,
    entry_point: str,
    error: str,
    reason: str,
    inputs: Sequence[str],
) -> TrainingFailed:
    """The one place a TrainingFailed is built: a service's user code (above) or a keel.step's
    block that raised. The reason is cut to 2,000 characters (a traceback's tail suffices)."""
    return TrainingFailed(
        envelope=envelope,
        family=family,
        stage=stage,
        entry_point=entry_point,
        error=error,
        reason=reason[:2000],
        input_ids=tuple(inputs),
    )
