"""RedisViewStore.snapshot reads a SCAN page's documents in one MGET, not a GET a key: verify
compares the whole views, and a round trip a key took 70 of its 159 s at 200k events on
Kafka + Redis (bench_verify --whole)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlparse

import pytest
import redis

from keel.secure.credentials import secrets_for
from keel.views.port import IndexAdd, Put, SetAdd, Tracking
from keel.views.redis import RedisViewStore

pytestmark = pytest.mark.integration


def admin(url: str) -> redis.Redis:
    """A connection that may reset and read the server's command counts (the launcher's
    secured server: its default user, over TLS)."""
    parsed = urlparse(url)
    secrets = secrets_for(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    extra: dict[str, Any] = {}
    if secrets is not None:
        extra = {k: v for k, v in secrets.redis("default").items() if k != "ssl"}
        url = "rediss://" + url.split("://", 1)[1]
    return redis.Redis.from_url(url, **extra)


def calls(r: redis.Redis, command: str) -> int:
    return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_snapshot_reads_documents_a_page_at_a_time(redis_url: str) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}:"
    v = RedisViewStore(redis_url, namespace=ns)
    n = 2500
    try:
        docs = {f"doc{i}": {"i": i, "x": [i, str(i)]} for i in range(n)}
        v.apply(
            [Put(k, d) for k, d in docs.items()]
            + [IndexAdd(f"idx{j}", f"m{i}", float(i)) for j in range(3) for i in range(50)]
            + [SetAdd("seen", tuple(f"e{i}" for i in range(40)))],
            Tracking("audit", {("ingest", 0): n}),
        )
        r = admin(redis_url)
        r.config_resetstat()
        snap = v.snapshot()
        scans, gets, mgets = calls(r, "scan"), calls(r, "get"), calls(r, "mget")
        r.close()
        assert snap["docs"] == docs
        assert snap["indexes"] == {
            f"idx{j}": {f"m{i}": float(i) for i in range(50)} for j in range(3)
        }
        assert snap["sets"] == {"seen": {f"e{i}" for i in range(40)}}
        assert snap["tracking"] == {"audit": {"ingest/0": n}}
        # every document came in a page's MGET: none on its own
        assert gets == 0, f"{gets} GETs for {n} documents"
        assert 1 <= mgets <= scans, (mgets, scans)
    finally:
        v.clear()
        v.close()
