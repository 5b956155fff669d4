"""Small helpers every service handler uses: its code version and event envelopes."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from keel.artifacts.codeversion import code_version
from keel.artifacts.ids import ArtifactSpec
from keel.artifacts.recording import record
from keel.artifacts.store import ArtifactInfo
from keel.events import Envelope, envelope
from keel.pipeline import Context


@cache
def service_code_version(service: str) -> str:
    """Digest of the service's package and the keel library it runs on."""
    return code_version(f"services.{service}", "keel")


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
