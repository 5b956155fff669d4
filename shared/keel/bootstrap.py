"""The one place that turns settings into live adapters, and closes them.

Nothing in Keel opens a file or a socket at import time; commands and services call
`bootstrap()` and pass the `Runtime` down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from keel.artifacts.port import ArtifactStore, open_artifacts
from keel.codec import Codec
from keel.events import Event, encode_event
from keel.log.factory import open_log
from keel.log.port import EventLog, LogRecord, OutgoingEvent
from keel.schemas.registry import SchemaRegistry, SchemaVersion, load_registry, version_from_json
from keel.settings import Settings, ensure_home
from keel.signing import Signer, Trust, load_private, load_trust
from keel.topics import topic_for
from keel.views.factory import open_views
from keel.views.port import ViewStore


@dataclass
class Runtime:
    settings: Settings
    registry: SchemaRegistry
    codec: Codec
    log: EventLog
    artifacts: ArtifactStore
    views: ViewStore
    signer: Signer = field(default_factory=lambda: Signer(Trust()))
    announced: set[str] = field(default_factory=set)
    _ol: Any = None  # (OpenLineage client, mapper), made on first use

    @property
    def trust(self) -> Trust:
        return self.signer.trust

    @property
    def embedded(self) -> bool:
        """The log is the embedded SQLite file (no projector service runs beside commands)."""
        return self.settings.bus_url().startswith("sqlite")

    @property
    def checkpoint_signer(self) -> Signer | None:
        """Who signs checkpoints when this process folds the views: on the embedded default the
        command itself; on a shared log only the projector service (a command that published
        them would fence its writer), so commands fold without publishing any."""
        return self.signer if self.embedded else None

    def publish(self, events: Sequence[Event]) -> list[LogRecord]:
        """Encode, sign and append events as one batch; key = subject, timestamp = occurred_at."""
        self._announce({e.EVENT_TYPE for e in events})
        records = self.log.append(sign_all(self.signer, self.codec, events))
        # imported on the first write: queries never pay for prometheus-client
        from keel import telemetry

        telemetry.recorded(events)
        if self.settings.openlineage:
            self._lineage(events)
        return records

    def _lineage(self, events: Sequence[Event]) -> None:
        """Live OpenLineage: never lets a lineage backend that is down stop the pipeline."""
        from keel.openlineage import Sink, mapper_for

        try:
            if self._ol is None:
                self._ol = (
                    Sink(self.settings.openlineage),
                    mapper_for(self, self.settings.project),
                )
            sink, mapper = self._ol
            for e in events:
                for run_event in mapper.events(e):
                    sink.emit(run_event)
            sink.flush()  # a reader tailing the file sees each event as it is recorded
        except Exception as exc:
            logging.getLogger(__name__).warning("OpenLineage emit failed: %s", exc)

    def _announce(self, event_types: set[str]) -> None:
        announce_schemas(self.log, self.registry, event_types, self.announced)

    def close(self) -> None:
        if self._ol is not None:
            self._ol[0].close()
        self.log.close()
        self.views.close()
        self.artifacts.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def announce_schemas(
    log: EventLog, registry: SchemaRegistry, event_types: set[str], announced: set[str]
) -> None:
    """Where the log has a schemas topic, publish each writer schema before its first use
    (whichever code path writes), so consumers running older code, or no Keel at all, can
    resolve it by fingerprint. `announced` remembers what this writer already published."""
    publish = getattr(log, "publish_schema", None)
    if publish is None:
        return
    for name in sorted(event_types - announced):
        v = registry.latest(name)
        publish(v.fingerprint_hex, json.dumps(v.schema, sort_keys=True))
        announced.add(name)


def to_outgoing(codec: Codec, event: Event) -> OutgoingEvent:
    env = event.envelope
    return OutgoingEvent(
        topic=topic_for(event.EVENT_TYPE),
        key=env.subject,
        timestamp_ms=int(env.occurred_at.timestamp() * 1000),
        value=encode_event(codec, event),
        event_type=event.EVENT_TYPE,
        writer=env.producer.service,
    )


def sign_all(signer: Signer, codec: Codec, events: Sequence[Event]) -> list[OutgoingEvent]:
    """Outgoing events with their writers' signature records (none in unsigned mode)."""
    out = [to_outgoing(codec, e) for e in events]
    sigs = signer.sign(
        [
            (e.envelope.producer.service, e.EVENT_TYPE, o.value)
            for e, o in zip(events, out, strict=True)
        ]
    )
    return [replace(o, sig=sig) for o, sig in zip(out, sigs, strict=True)]


def load_signer(s: Settings) -> Signer:
    """The project's public keys and roles, and the private keys this process may use."""
    trust = load_trust(s.trust_file(), s.project)
    private = load_private(s.private_keys_dir()) if trust.enabled else {}
    return Signer(trust, private, s.identity or None)


def bootstrap(settings: Settings | None = None, *, create: bool = True) -> Runtime:
    """Build the runtime. create=False (read-only commands) refuses a missing KEEL_HOME."""
    s = settings or Settings()
    ensure_home(s.home, create=create)
    registry = load_registry()
    # the principal travels in the settings (a service's command sets it), not the environment
    log = open_log(s.bus_url(), lock_timeout=s.lock_timeout, principal=s.principal)
    return Runtime(
        settings=s,
        registry=registry,
        codec=Codec(registry, schema_resolver(log)),
        log=log,
        artifacts=open_artifacts(s.artifacts, s.artifacts_dir(), s.principal),
        views=open_views(s.views_url()),
        signer=load_signer(s),
    )


def schema_resolver(log: EventLog) -> Callable[[bytes], SchemaVersion | None] | None:
    """Resolve unknown fingerprints from the log's schemas topic, when it has one."""
    read = getattr(log, "read_schemas", None)
    if read is None:
        return None

    def resolve(fp: bytes) -> SchemaVersion | None:
        text = read().get(fp.hex())
        return None if text is None else version_from_json(text)

    return resolve
