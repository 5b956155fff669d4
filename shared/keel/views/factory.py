"""Pick a ViewStore adapter from a URL: sqlite:///path (embedded) or redis://host:port/db."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from keel.errors import ConfigError
from keel.views.port import ViewStore


def open_views(url: str) -> ViewStore:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        from keel.views.sqlite import SqliteViewStore

        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        return SqliteViewStore(Path(path))
    if parsed.scheme in ("redis", "rediss"):
        from keel.views.redis import RedisViewStore

        ns = parse_qs(parsed.query).get("namespace", ["keel:"])[0]
        return RedisViewStore(url.split("?", 1)[0], namespace=ns)
    raise ConfigError(
        f"KEEL_VIEWS {url!r}: unknown scheme {parsed.scheme!r}",
        hint="use sqlite:///path/to/views.db (default) or redis://host:port/0",
    )
