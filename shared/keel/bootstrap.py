"""The one place that turns settings into live adapters, and closes them.

Nothing in Keel opens a file or a socket at import time; commands and services call
`bootstrap()` and pass the `Runtime` down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keel.artifacts.store import LocalArtifactStore
from keel.codec import Codec
from keel.events import Event, encode_event
from keel.log.factory import open_log
from keel.log.port import EventLog, LogRecord, OutgoingEvent
from keel.schemas.registry import SchemaRegistry, load_registry
from keel.settings import Settings, ensure_home
from keel.topics import topic_for


@dataclass
class Runtime:
    settings: Settings
    registry: SchemaRegistry
    codec: Codec
    log: EventLog
    artifacts: LocalArtifactStore

    def publish(self, events: Sequence[Event]) -> list[LogRecord]:
        """Encode and append events as one batch; key = subject, timestamp = occurred_at."""
        return self.log.append([to_outgoing(self.codec, e) for e in events])

    def close(self) -> None:
        self.log.close()
        self.artifacts.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_outgoing(codec: Codec, event: Event) -> OutgoingEvent:
    env = event.envelope
    return OutgoingEvent(
        topic=topic_for(event.EVENT_TYPE),
        key=env.subject,
        timestamp_ms=int(env.occurred_at.timestamp() * 1000),
        value=encode_event(codec, event),
    )


def bootstrap(settings: Settings | None = None, *, create: bool = True) -> Runtime:
    """Build the runtime. create=False (read-only commands) refuses a missing KEEL_HOME."""
    s = settings or Settings()
    ensure_home(s.home, create=create)
    registry = load_registry()
    return Runtime(
        settings=s,
        registry=registry,
        codec=Codec(registry),
        log=open_log(s.bus_url()),
        artifacts=LocalArtifactStore(s.artifacts_dir()),
    )
