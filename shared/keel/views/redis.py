"""ViewStore on Redis: documents as JSON strings, indexes as sorted sets, tracking as a hash.

`apply` is one MULTI/EXEC transaction: Redis runs it all or nothing, and no other client sees
half of it. With appendonly + appendfsync always (the launcher's settings), an acknowledged EXEC
survives a restart; an EXEC interrupted by a crash is dropped whole (redis-check-aof --fix
truncates a partial transaction at the end of the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any
from urllib.parse import urlparse

from keel.extras import need

# Said in one line before the imports below fail: this module is imported to open redis:// views.
need("redis", "redis", "hiredis")

import hiredis

from keel.errors import KeelError
from keel.log.port import TopicPartition
from keel.secure.credentials import PROJECTOR, READER, secrets_for
from keel.views.docjson import dumps, loads
from keel.views.port import (
    Around,
    IndexAdd,
    IndexRemove,
    Put,
    Remove,
    SetAdd,
    SetRemove,
    StaleTracking,
    Tracking,
    Update,
)

# KEYS[1] the index; ARGV[1] the score, ARGV[2] the document key prefix. Lua's false becomes
# a nil reply; a member's document key is what follows its last "@" (keel.views.port.member_key,
# the same rule in Lua: '[^@]*$').
_AROUND = """
local b = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
local a = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = {b[1] or false, b[2] or false, a[1] or false, a[2] or false, false, false}
if b[1] then out[5] = redis.call('GET', ARGV[2] .. string.match(b[1], '[^@]*$')) end
if a[1] then out[6] = redis.call('GET', ARGV[2] .. string.match(a[1], '[^@]*$')) end
return out
"""


class RedisViewStore:
    def __init__(self, url: str, namespace: str = "keel:") -> None:
        import redis

        self.ns = namespace
        self.url = url
        # A secured Redis (keel.secure.credentials): TLS and an ACL user, the projector's when
        # this process holds it (it folds the views), else the read-only `reader`.
        parsed = urlparse(url)
        secrets = secrets_for(parsed.hostname or "127.0.0.1", parsed.port or 6379)
        extra: dict[str, Any] = {}
        self.user: str | None = None
        if secrets is not None:
            self.user = PROJECTOR if secrets.has("redis", PROJECTOR) else READER
            extra = {k: v for k, v in secrets.redis(self.user).items() if k != "ssl"}
            url = "rediss://" + url.split("://", 1)[1]
        # Any: redis-py's stubs type every reply as a union of all reply types.
        self._r: Any = redis.Redis.from_url(
            url, socket_connect_timeout=10, socket_timeout=30, **extra
        )
        self._around = self._r.register_script(_AROUND)
        try:
            self._r.ping()
        except redis.exceptions.AuthenticationError as exc:
            raise KeelError(
                f"Redis at {self.url} refused user {self.user!r} ({exc})",
                hint="the password in the stack's secrets (redis/USER.password) must be the "
                "server's",
            ) from None
        except redis.exceptions.ConnectionError as exc:
            raise KeelError(
                f"Redis at {self.url} is unreachable ({exc})",
                hint="start it (`make up`) or fix KEEL_VIEWS=redis://host:port/db; a secured "
                "Redis needs its secrets (KEEL_SECRETS or ~/.config/keel/clusters/HOST_PORT)",
            ) from None

    @property
    def read_only(self) -> bool:
        """Connected as a reader: folding is the projector's (keel.audit.freshness waits)."""
        return self.user == READER

    def _doc(self, key: str) -> str:
        return f"{self.ns}doc:{key}"

    def _idx(self, name: str) -> str:
        return f"{self.ns}idx:{name}"

    def _trk(self, projector: str) -> str:
        return f"{self.ns}tracking:{projector}"

    def _set(self, name: str) -> str:
        return f"{self.ns}set:{name}"

    def apply(self, updates: Sequence[Update], tracking: Tracking | None = None) -> None:
        # A run of updates of one kind becomes a few multi-key commands (MSET, one ZADD per
        # index, one SADD per set) instead of one command per update. Order between runs is
        # kept; within a run, later writes of a key still win. The arguments are built in one
        # pass a run, keys by concatenation and scores handed to hiredis as floats (it packs a
        # float as repr does): a batch's build cost 2.2 -> 1.0 us an event (decision 0027).
        cmds: list[list[Any]] = []
        doc, idx = self.ns + "doc:", self.ns + "idx:"
        for kind, typed in groupby(updates, key=type):
            group: Any = typed  # a run of one kind
            if kind is Put:
                args: list[Any] = ["MSET"]
                for u in group:
                    args += (doc + u.key, dumps(u.doc))
                cmds.append(args)
            elif kind is Remove:
                cmds.append(["DEL", *(doc + u.key for u in group)])
            elif kind is IndexAdd:
                latest: dict[str, dict[str, Any]] = {}  # index -> member -> its last score
                for u in group:
                    scores = latest.get(u.index)
                    if scores is None:
                        scores = latest[u.index] = {}
                    scores[u.member] = u.score
                for index, scores in latest.items():
                    args = ["ZADD", idx + index]
                    for member, score in scores.items():
                        args += (score if type(score) is float else float(score), member)
                    cmds.append(args)
            elif kind is IndexRemove:
                for index, rems in _by(group, "index").items():
                    cmds.append(["ZREM", idx + index, *(u.member for u in rems)])
            elif kind in (SetAdd, SetRemove):
                for name, us in _by(group, "name").items():
                    members = [m for u in us for m in u.members]
                    if members:
                        cmds.append(
                            ["SADD" if kind is SetAdd else "SREM", self._set(name), *members]
                        )
        if tracking is not None and tracking.positions:
            pairs = (x for (t, p), o in tracking.positions.items() for x in (f"{t}\x00{p}", o))
            cmds.append(["HSET", self._trk(tracking.projector), *pairs])
        if cmds:
            guarded = tracking is not None and tracking.since is not None
            self._transaction(cmds, tracking if guarded else None)

    def _transaction(
        self,
        cmds: list[list[Any]],
        expect: Tracking | None = None,
    ) -> None:
        """MULTI, the commands, EXEC, packed by hand in one write: redis-py's generic packer
        costs ~3 us per argument, which made a batch's write cost more than its fold (~17 us
        per event in the projector profile). Replies are read back in full so the connection
        stays in step; any error drops the connection and raises."""
        import redis

        payload = b"".join(_resp(c) for c in (["MULTI"], *cmds, ["EXEC"]))
        pool = self._r.connection_pool
        conn = pool.get_connection()
        try:
            if expect is not None:
                # WATCH the tracking hash, check it still holds the positions the batch was
                # folded from; EXEC then fails (nil) if anyone writes it before the commit.
                key = self._trk(expect.projector)
                conn.send_packed_command([_resp(["WATCH", key]), _resp(["HGETALL", key])])
                conn.read_response()
                stored = _positions(conn.read_response())
                if stored != dict(expect.since or {}):
                    conn.send_packed_command([_resp(["UNWATCH"])])
                    conn.read_response()
                    raise StaleTracking(expect.projector)
            conn.send_packed_command([payload], check_health=False)
            errors = []
            for _ in range(len(cmds) + 1):  # +OK for MULTI, +QUEUED for each command
                try:
                    conn.read_response()
                except redis.exceptions.ResponseError as exc:
                    errors.append(exc)
            result = conn.read_response()  # EXEC: the replies, or EXECABORT
            if expect is not None and result is None:  # the WATCHed tracking moved
                raise StaleTracking(expect.projector)
            for reply in result or []:
                if isinstance(reply, redis.exceptions.ResponseError):
                    errors.append(reply)
            if errors:
                raise errors[0]
        except StaleTracking:
            raise  # the connection is in step: nothing queued is left
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._r.get(self._doc(key))
        return None if raw is None else dict(loads(raw))

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        if not keys:
            return []
        return [None if r is None else dict(loads(r)) for r in self.get_many_raw(keys)]

    def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        doc = self.ns + "doc:"
        return list(self._read(["MGET", *(doc + k for k in keys)]))

    def contains(self, name: str, members: Sequence[str]) -> list[bool]:
        if not members:
            return []
        return [bool(x) for x in self._read(["SMISMEMBER", self._set(name), *members])]

    def _read(self, args: list[Any]) -> Any:
        """One read command packed by hiredis, with redis-py's retries of a dropped connection.
        The fold asks two a batch with thousands of arguments (the documents it lacks, its
        events in the applied set), and redis-py's own packer cost ~0.5 us an argument: at
        5000 keys an MGET took 3.2-3.7 ms of CPU that way, ~0.9 ms packed here."""
        import redis

        packed = _resp(args)
        pool = self._r.connection_pool
        conn = pool.get_connection()

        def ask() -> Any:
            conn.send_packed_command([packed])
            return conn.read_response()

        try:
            retry = self._r.get_retry()
            return retry.call_with_retry(ask, lambda _: conn.disconnect()) if retry else ask()
        except redis.exceptions.ResponseError:
            raise  # an error reply: the connection is in step
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def members(self, name: str) -> list[str]:
        return sorted(m.decode() for m in self._r.smembers(self._set(name)))

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

    def index_around(
        self, index: str, score: float
    ) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
        key = self._idx(index)
        pipe = self._r.pipeline(transaction=False)
        pipe.zrevrangebyscore(key, score, "-inf", start=0, num=1, withscores=True)
        pipe.zrangebyscore(key, f"({score}", "+inf", start=0, num=1, withscores=True)
        below, above = pipe.execute()
        return (
            (below[0][0].decode(), float(below[0][1])) if below else None,
            (above[0][0].decode(), float(above[0][1])) if above else None,
        )

    def index_around_docs(self, index: str, score: float, prefix: str) -> Around:
        # One round trip instead of two (a pipeline of the two ranges, then MGET): a script
        # reads both neighbours and their documents. It reads document keys it is not passed
        # in KEYS, which Redis Cluster would refuse; Keel's views are one Redis (or a replica).
        # Lua gets the score as a string; Python's "inf" is one of Redis's own spellings
        below_m, below_s, above_m, above_s, below_d, above_d = self._around(
            keys=[self._idx(index)], args=[repr(float(score)), self._doc(prefix)]
        )
        docs = [None if d is None else dict(loads(d)) for d in (below_d, above_d)]
        return _entry(below_m, below_s), _entry(above_m, above_s), docs

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
        sets: dict[str, set[str]] = {}
        # A page of SCAN's keys read in two round trips (its documents in one MGET, the rest
        # pipelined): a round trip a key took 70 of verify's 159 s at 200k events (bench_verify).
        cursor = 0
        while True:
            cursor, page = self._r.scan(cursor, match=f"{self.ns}*", count=1000)
            named = [(raw, *raw.decode()[len(self.ns) :].partition(":")[::2]) for raw in page]
            doc_keys = [(raw, name) for raw, kind, name in named if kind == "doc"]
            if doc_keys:
                got = self._r.mget([raw for raw, _ in doc_keys])
                docs.update((name, loads(d)) for (_, name), d in zip(doc_keys, got, strict=True))
            pipe = self._r.pipeline(transaction=False)
            rest = []
            for raw, kind, name in named:
                if kind == "idx":
                    pipe.zrange(raw, 0, -1, withscores=True)
                elif kind == "set":
                    pipe.smembers(raw)
                elif kind == "tracking":
                    pipe.hgetall(raw)
                else:
                    continue
                rest.append((kind, name))
            for (kind, name), reply in zip(rest, pipe.execute() if rest else [], strict=True):
                if kind == "idx":
                    idx[name] = {m.decode(): float(s) for m, s in reply}
                elif kind == "set":
                    sets[name] = {m.decode() for m in reply}
                else:
                    trk[name] = {k.decode().replace("\x00", "/"): int(v) for k, v in reply.items()}
            if cursor == 0:
                return {"docs": docs, "indexes": idx, "sets": sets, "tracking": trk}

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


def _entry(member: bytes | None, score: bytes | None) -> tuple[str, float] | None:
    return (member.decode(), float(score)) if member and score is not None else None


def _by(run: Any, attr: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for u in run:
        groups.setdefault(getattr(u, attr), []).append(u)
    return groups


def _positions(raw: Any) -> dict[tuple[str, int], int]:
    """HGETALL of a tracking hash (a flat list or a dict, by protocol) -> positions."""
    items = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    out = {}
    for k, v in items:
        topic, _, part = (k.decode() if isinstance(k, bytes) else k).partition("\x00")
        out[(topic, int(part))] = int(v)
    return out


def _resp(args: list[Any]) -> bytes:
    """One command in the Redis protocol (RESP2): *N, then $len + bytes for each argument;
    packed by hiredis in C (~0.07 us per argument against ~0.2 us for the same in Python)."""
    return hiredis.pack_command(tuple(args))  # type: ignore[no-any-return]
