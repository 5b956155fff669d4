"""ViewStore on Redis: documents as JSON strings, indexes as sorted sets, tracking as a hash.

`apply` is one MULTI/EXEC transaction: Redis runs it all or nothing, and no other client sees
half of it. With appendonly + appendfsync always (the launcher's settings), an acknowledged EXEC
survives a restart; an EXEC interrupted by a crash is dropped whole (redis-check-aof --fix
truncates a partial transaction at the end of the file).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from keel.errors import KeelError
from keel.log.port import TopicPartition
from keel.views.port import IndexAdd, IndexRemove, Put, Remove, Tracking, Update


class RedisViewStore:
    def __init__(self, url: str, namespace: str = "keel:") -> None:
        import redis

        self.ns = namespace
        self.url = url
        # Any: redis-py's stubs type every reply as a union of all reply types.
        self._r: Any = redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=30)
        try:
            self._r.ping()
        except redis.exceptions.ConnectionError as exc:
            raise KeelError(
                f"Redis at {url} is unreachable ({exc})",
                hint="start it (`make up`) or fix KEEL_VIEWS=redis://host:port/db",
            ) from None

    def _doc(self, key: str) -> str:
        return f"{self.ns}doc:{key}"

    def _idx(self, name: str) -> str:
        return f"{self.ns}idx:{name}"

    def _trk(self, projector: str) -> str:
        return f"{self.ns}tracking:{projector}"

    def apply(self, updates: Sequence[Update], tracking: Tracking | None = None) -> None:
        pipe = self._r.pipeline(transaction=True)  # MULTI ... EXEC
        for u in updates:
            if isinstance(u, Put):
                pipe.set(self._doc(u.key), json.dumps(u.doc, sort_keys=True, separators=(",", ":")))
            elif isinstance(u, Remove):
                pipe.delete(self._doc(u.key))
            elif isinstance(u, IndexAdd):
                pipe.zadd(self._idx(u.index), {u.member: u.score})
            elif isinstance(u, IndexRemove):
                pipe.zrem(self._idx(u.index), u.member)
        if tracking is not None and tracking.positions:
            pipe.hset(
                self._trk(tracking.projector),
                mapping={f"{t}\x00{p}": o for (t, p), o in tracking.positions.items()},
            )
        pipe.execute()

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._r.get(self._doc(key))
        return None if raw is None else dict(json.loads(raw))

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        raws = self._r.mget([self._doc(k) for k in keys])
        return [None if r is None else dict(json.loads(r)) for r in raws]

    def index_range(
        self,
        index: str,
        low: float = float("-inf"),
        high: float = float("inf"),
        offset: int = 0,
        limit: int = 100,
        reverse: bool = False,
    ) -> list[tuple[str, float]]:
        lo = "-inf" if low == float("-inf") else low
        hi = "+inf" if high == float("inf") else high
        if reverse:
            rows = self._r.zrevrangebyscore(
                self._idx(index), hi, lo, start=offset, num=limit, withscores=True
            )
        else:
            rows = self._r.zrangebyscore(
                self._idx(index), lo, hi, start=offset, num=limit, withscores=True
            )
        return [(m.decode(), float(s)) for m, s in rows]

    def index_floor(self, index: str, score: float) -> tuple[str, float] | None:
        rows = self._r.zrevrangebyscore(
            self._idx(index), score, "-inf", start=0, num=1, withscores=True
        )
        return (rows[0][0].decode(), float(rows[0][1])) if rows else None

    def tracking(self, projector: str) -> dict[TopicPartition, int]:
        raw = self._r.hgetall(self._trk(projector))
        out: dict[TopicPartition, int] = {}
        for k, v in raw.items():
            topic, _, part = k.decode().rpartition("\x00")
            out[(topic, int(part))] = int(v)
        return out

    def snapshot(self) -> dict[str, Any]:
        docs: dict[str, Any] = {}
        idx: dict[str, dict[str, float]] = {}
        trk: dict[str, dict[str, int]] = {}
        for raw in self._r.scan_iter(match=f"{self.ns}*", count=1000):
            key = raw.decode()[len(self.ns) :]
            kind, _, name = key.partition(":")
            if kind == "doc":
                docs[name] = json.loads(self._r.get(raw))
            elif kind == "idx":
                idx[name] = {
                    m.decode(): float(s) for m, s in self._r.zrange(raw, 0, -1, withscores=True)
                }
            elif kind == "tracking":
                trk[name] = {
                    k.decode().replace("\x00", "/"): int(v) for k, v in self._r.hgetall(raw).items()
                }
        return {"docs": docs, "indexes": idx, "tracking": trk}

    def clear(self) -> None:
        cursor = 0
        while True:
            cursor, keys = self._r.scan(cursor, match=f"{self.ns}*", count=1000)
            if keys:
                self._r.delete(*keys)
            if cursor == 0:
                return

    def close(self) -> None:
        self._r.close()
