"""Helpers every service's handlers use: code versions, envelopes, storing and checking
artifacts, recording failed user code. In the library so services never import each other."""

from __future__ import annotations

import importlib.util
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


@cache
def service_code_version(service: str) -> str:
    """Digest of the service's package and the keel library it runs on; for producers that
    are commands of the library itself (cli, contracts), of the library alone."""
    package = f"keel_services.{service}"
    try:
        found = importlib.util.find_spec(package) is not None
    except ModuleNotFoundError:  # no `services` distribution installed at all
        found = False
    return code_version(package, "keel") if found else code_version("keel")


def make_envelope(
    ctx: Context,
    service: str,
    event_type: str,
    subject: str,
    at: datetime,
    causation_id: str | None = None,
) -> Envelope:
    return envelope(
        event_type,
        subject=subject,
        service=service,
        code_version=service_code_version(service),
        actor=ctx.actor,
        correlation_id=ctx.correlation_id,
        occurred_at=at,
        causation_id=causation_id,
    )


def store(
    ctx: Context, service: str, spec: ArtifactSpec, data: bytes | Path, at: datetime
) -> ArtifactInfo:
    """Store an artifact and announce it (ArtifactRecorded) through the context's bus."""
    info, _ = record(
        ctx.rt.artifacts,
        spec,
        data,
        ctx.publish,
        service=service,
        actor=ctx.actor,
        correlation_id=ctx.correlation_id,
        occurred_at=at,
    )
    return info


def rejected_artifact(
    ctx: Context, service: str, artifact_id: str, action: str, at: datetime
) -> ArtifactRejected | None:
    """None if the artifact's bytes hash to the digest its signed ArtifactRecorded states;
    otherwise the ArtifactRejected to record (the caller publishes it and refuses)."""
    node = ctx.read.artifact(artifact_id)
    recorded = node["digest"] if node else ""
    try:
        ctx.rt.artifacts.read_recorded(artifact_id, recorded)
        return None
    except ArtifactError as exc:
        return ArtifactRejected(
            envelope=make_envelope(ctx, service, "ArtifactRejected", artifact_id, at),
            artifact_id=artifact_id,
            action=action,
            recorded_digest=recorded,
            actual_digest=getattr(exc, "actual", ""),
            reason=str(exc),
        )


def training_failed(
    ctx: Context,
    service: str,
    family: str,
    err: UserCodeError,
    inputs: list[str],
    at: datetime,
    causation_id: str | None = None,
) -> TrainingFailed:
    """The record of user code that raised during a retrain (the caller publishes it)."""
    return TrainingFailed(
        envelope=make_envelope(ctx, service, "TrainingFailed", family, at, causation_id),
        family=family,
        stage=err.stage,
        entry_point=err.entry_point,
        error=err.error,
        reason=err.reason[:2000],
        input_ids=tuple(inputs),
    )
