"""How Keel's records look on Kafka: topic names under a prefix, headers and timestamps.

Shared by every client of the package (the producer writes these headers, the scans and the
consumer groups read them back), so a record reads the same whichever client fetched it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from keel.log.port import OutgoingEvent
from keel.topics import SCHEMAS_TOPIC

DEFAULT_PREFIX = "keel."
TIMESTAMP_LOG_APPEND_TIME = 2  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME
TIME_HEADER = "keel-time"  # the writer's timestamp (ms): the business time, when Keel writes
SIG_HEADER = "keel-sig"  # the writer's signature record (keel.signing)
AVRO_MAGIC = b"\xc3\x01"  # Avro single-object encoding: marker, then the 8-byte fingerprint
AVRO_CONTENT_TYPE = b"application/vnd.apache.avro+binary; encoding=single-object"


@dataclass(frozen=True)
class Names:
    """Logical topic names ("deployments") <-> physical ones under a prefix ("keel.deployments"),
    so several Keel deployments or test runs can share one cluster without seeing each other."""

    prefix: str = DEFAULT_PREFIX

    def phys(self, topic: str) -> str:
        return self.prefix + topic

    def logical(self, topic: str) -> str:
        return topic[len(self.prefix) :] if topic.startswith(self.prefix) else topic


def new_prefix() -> str:
    """A fresh topic prefix, for tests and throwaway runs."""
    return f"t{uuid.uuid4().hex[:10]}."


def headers(e: OutgoingEvent) -> list[tuple[str, bytes]]:
    """What generic tools (kcat, Connect, ksqlDB) route on without decoding: the content type,
    the writer schema's fingerprint (the schemas topic's key) and the event type."""
    out: list[tuple[str, bytes]] = []
    if e.value[:2] == AVRO_MAGIC and len(e.value) >= 10:
        out.append(("content-type", AVRO_CONTENT_TYPE))
        out.append(("keel-schema-fingerprint", e.value[2:10].hex().encode()))
    elif e.topic == SCHEMAS_TOPIC:
        out.append(("content-type", b"application/json"))
    if e.event_type:
        out.append(("keel-event-type", e.event_type.encode()))
    # the writer's (business) time: the record's own timestamp is the broker's append time
    out.append((TIME_HEADER, str(e.timestamp_ms).encode()))
    if e.sig:
        out.append((SIG_HEADER, e.sig))
    return out


def time_and_sig(found_headers: Any) -> tuple[int | None, bytes | None]:
    """The writer's time and signature record from a librdkafka message's headers."""
    if not found_headers:
        return None, None
    found = dict(found_headers)  # in C; a later duplicate would win, as no Keel writer repeats one
    writer_ms = found.get(TIME_HEADER)
    return None if writer_ms is None else int(writer_ms), found.get(SIG_HEADER)
