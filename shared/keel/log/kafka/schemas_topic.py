"""The compacted schemas topic: every writer schema as clean Avro JSON, keyed by fingerprint, so
any Avro reader can resolve a record's writer schema without a registry server."""

from __future__ import annotations

import time
from typing import Protocol

from keel.log.kafka.scan import Scanner
from keel.log.port import LogRecord, OutgoingEvent
from keel.topics import SCHEMAS_TOPIC


class _Appends(Protocol):
    def append(self, events: list[OutgoingEvent]) -> list[LogRecord]: ...


def publish_schema(log: _Appends, fingerprint_hex: str, schema_json: str) -> None:
    """Published before a schema's first use (compaction keeps the latest per key)."""
    now_ms = int(time.time() * 1000)
    log.append([OutgoingEvent(SCHEMAS_TOPIC, fingerprint_hex, now_ms, schema_json.encode())])


def read_schemas(scanner: Scanner) -> dict[str, str]:
    """fingerprint hex -> schema JSON, the latest value per key."""
    return {r.key: r.value.decode() for r in scanner.scan([SCHEMAS_TOPIC], None)}
