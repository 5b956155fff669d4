"""Decoding on the consumer side: bad bytes go to the quarantine, never crash the loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from keel.codec import Codec, CodecError
from keel.events import Envelope, Event, decode_event, envelope
from keel.events.generated import EventQuarantined
from keel.log.port import LogRecord
from keel.signing import Trust


def quarantine_event(
    record: LogRecord, error: CodecError, *, service: str, code_version: str
) -> EventQuarantined:
    """A log record a consumer could not decode, set aside by `service`."""
    where = f"{record.topic}/{record.partition}/{record.offset}"
    return quarantined(
        envelope(
            "EventQuarantined",
            subject=where,
            service=service,
            code_version=code_version,
            actor=service,
            correlation_id=where,
        ),
        record.topic,
        record.partition,
        record.offset,
        type(error).__name__,
        str(error),
        record.value,
    )


def quarantined(
    envelope: Envelope,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    error: str,
    reason: str,
    raw: bytes,
) -> EventQuarantined:
    """The one place an EventQuarantined is built: a consumer's undecodable record (above) or
    a body the MLflow bridge could not read (source `mlflow-webhook`, position 0: a webhook
    delivery has no log position), each with its producer's envelope."""
    return EventQuarantined(
        envelope=envelope,
        source_topic=source_topic,
        source_partition=source_partition,
        source_offset=source_offset,
        error=error,
        reason=reason,
        raw=raw,
    )


def decode_or_quarantine(
    codec: Codec,
    record: LogRecord,
    quarantine: Callable[[LogRecord, CodecError], None],
) -> Event | None:
    """The decoded event, or None after handing the record and the reason to `quarantine`."""
    try:
        return decode_event(codec, record.value)
    except CodecError as exc:
        quarantine(record, exc)
        return None


def trusted_events(codec: Codec, trust: Trust, records: Iterable[LogRecord]) -> Iterator[Event]:
    """The events of `records` that decode and whose signature checks against the project's
    keys (every decodable one when the project declares no keys: unsigned mode). What fails is
    left out here and reported by `keel audit verify`; a command never builds on it."""
    for rec in records:
        try:
            event = decode_event(codec, rec.value)
        except CodecError:
            continue
        verdict = trust.check(rec.value, rec.sig, event.EVENT_TYPE) if trust.enabled else None
        if verdict and trust.admit(rec.tp, rec.offset, verdict).problem:
            continue
        yield event
