"""Typed events (generated from the .avsc files) and the envelope every event carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from keel import __version__
from keel.codec import Codec
from keel.events.generated import EVENT_TYPES, Envelope, Event, Producer

__all__ = [
    "EVENT_TYPES",
    "Envelope",
    "Event",
    "Producer",
    "decode_event",
    "encode_event",
    "envelope",
]


def envelope(
    event_type: str,
    *,
    subject: str,
    service: str,
    code_version: str,
    actor: str,
    correlation_id: str,
    occurred_at: datetime | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    """A fresh envelope; `occurred_at` is the business time and defaults to now (UTC)."""
    when = occurred_at or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return Envelope(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        occurred_at=when,
        producer=Producer(service=service, package_version=__version__, code_version=code_version),
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
        subject=subject,
    )


def encode_event(codec: Codec, event: Event) -> bytes:
    return codec.encode(event.EVENT_TYPE, event.to_avro())


def decode_event(codec: Codec, data: bytes) -> Event:
    name, record = codec.decode(data)
    return EVENT_TYPES[name].from_avro(record)
