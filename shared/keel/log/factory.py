"""Pick an EventLog adapter from a URL: sqlite:///path (embedded) or kafka://host:port."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from keel.errors import ConfigError
from keel.log.port import EventLog


def open_log(url: str, lock_timeout: float = 30.0, principal: str = "") -> EventLog:
    """principal: who this process is to a secured broker (Settings.principal); empty: the
    environment's KEEL_PRINCIPAL, else a person's (keel.secure.credentials.process_principal)."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from keel.log.sqlite import SqliteEventLog

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if not path:
            raise ConfigError(
                f"KEEL_BUS {url!r} names no file", hint="use sqlite:///path/to/log.db"
            )
        return SqliteEventLog(Path(path), lock_timeout=lock_timeout)
    if parsed.scheme == "kafka":
        from urllib.parse import parse_qs

        from keel.log.kafka import DEFAULT_PREFIX, KafkaEventLog

        if not parsed.hostname or not parsed.port:
            raise ConfigError(
                f"KEEL_BUS {url!r} names no host:port", hint="use kafka://127.0.0.1:9092"
            )
        query = parse_qs(parsed.query)
        prefix = query.get("prefix", [DEFAULT_PREFIX])[0]
        exactly_once = query.get("exactly_once", ["true"])[0].lower() != "false"
        return KafkaEventLog(
            f"{parsed.hostname}:{parsed.port}",
            prefix=prefix,
            exactly_once=exactly_once,
            principal=principal or None,
        )
    raise ConfigError(
        f"KEEL_BUS {url!r}: unknown scheme {parsed.scheme!r}",
        hint="use sqlite:///path/to/log.db (default) or kafka://host:port",
    )
