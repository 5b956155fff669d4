"""Views held in memory while a rebuild folds the log from its beginning (decision 0034).

A rebuild's fold starts from empty views and nothing but the fold reads them until they replace
the live ones, so they need not be a database while it runs: documents are held as their stored
canonical JSON bytes (keel.views.docjson), index entries, sets and tracking in dicts, and every
ViewStore read is answered from them. At the end `rows()` hands each table over in key order,
and the SQLite adapter writes them once, as appends to B-trees built in order, instead of one
random B-tree insert per update while folding.

Past a memory budget (`KEEL_REBUILD_MEMORY_MB`, default `DEFAULT_BUDGET_MB` MiB) what is held is
written in key order into a spill store (the SQLite adapter's `building` file beside the views)
and memory starts again empty: reads look in memory first, then in the spill; a removal of
something spilled is held as a tombstone (None) until the next spill. So a home larger than
the budget still rebuilds, at the cost of random inserts in the spill's later passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from keel.errors import ConfigError
from keel.log.port import TopicPartition
from keel.views.docjson import dumps, loads
from keel.views.port import (
    Around,
    Entry,
    IndexAdd,
    IndexRemove,
    Put,
    Remove,
    SetAdd,
    SetRemove,
    StaleTracking,
    Tracking,
    Update,
    member_key,
)

DEFAULT_BUDGET_MB = 4096  # Settings.rebuild_memory_mb's default (KEEL_REBUILD_MEMORY_MB)
# What a held entry costs beyond its strings' characters (CPython: the str/bytes/float objects'
# headers, the dict's slot): an estimate that keeps the budget near the process's growth
# (200k events: 280 MB estimated, the process's peak 470 MB with its ~150 MB before the fold).
_OVERHEAD = 150


def budget_bytes(mb: float) -> int:
    """The memory budget of `mb` MiB in bytes; refused unless positive."""
    if not mb > 0:
        raise ConfigError(
            f"KEEL_REBUILD_MEMORY_MB={mb!r} is not a positive number of MiB",
            hint=f"set it to the memory a rebuild may hold, e.g. {DEFAULT_BUDGET_MB} (the "
            "default), or unset it",
        )
    return int(mb * 2**20)


@dataclass(slots=True)
class Rows:
    """Every table's rows in key order (SQLite's BINARY order: str order of code points is
    UTF-8 byte order); a None value/score/present=False is a removal of a spilled row."""

    docs: list[tuple[str, bytes | None]] = field(default_factory=list)  # stored JSON bytes
    idx: list[tuple[str, str, float | None]] = field(default_factory=list)
    sets: list[tuple[str, str, bool]] = field(default_factory=list)
    tracking: list[tuple[str, str, int, int]] = field(default_factory=list)


class Spill(Protocol):
    """Where held views go past the budget: a ViewStore that also takes `Rows` as a batch."""

    def write_rows(self, rows: Rows) -> None: ...

    def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]: ...

    def contains(self, name: str, members: Sequence[str]) -> list[bool]: ...

    def members(self, name: str) -> list[str]: ...

    def index_range(
        self,
        index: str,
        low: float = float("-inf"),
        high: float = float("inf"),
        offset: int = 0,
        limit: int = 100,
        reverse: bool = False,
    ) -> list[tuple[str, float]]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def clear(self) -> None: ...


_ALL = 2**62


class MemoryViewStore:
    """A ViewStore in memory (see the module's docstring). `spill` makes the spill store the
    first time the budget is passed; without one the budget is not enforced."""

    def __init__(
        self, *, budget: int | None = None, spill: Callable[[], Spill] | None = None
    ) -> None:
        self.budget = budget_bytes(DEFAULT_BUDGET_MB) if budget is None else budget
        self._make_spill = spill
        self.spilled: Spill | None = None
        self.spills = 0  # how many times the held views were written out
        self.held = 0  # estimated bytes held
        self._docs: dict[str, bytes | None] = {}
        self._idx: dict[str, dict[str, float | None]] = {}
        self._sets: dict[str, dict[str, bool]] = {}
        self._tracking: dict[str, dict[TopicPartition, int]] = {}

    # -- writes ----------------------------------------------------------------------------------
    def apply(self, updates: Sequence[Update], tracking: Tracking | None = None) -> None:
        # Documents are encoded before anything changes: a document that cannot be encoded
        # leaves the whole batch unapplied, as the database adapters' transactions do.
        encoded = [dumps(u.doc) if type(u) is Put else b"" for u in updates]
        since = None if tracking is None else tracking.since
        if (
            tracking is not None
            and since is not None
            and self.tracking(tracking.projector) != dict(since)
        ):
            raise StaleTracking(tracking.projector)
        spilled = self.spilled is not None
        docs, held = self._docs, 0
        for u, data in zip(updates, encoded, strict=True):
            if type(u) is Put:
                docs[u.key] = data
                held += len(u.key) + len(data) + _OVERHEAD
            elif type(u) is SetAdd:
                s = self._sets.setdefault(u.name, {})
                for m in u.members:
                    s[m] = True
                held += sum(len(m) for m in u.members) + _OVERHEAD * len(u.members)
            elif type(u) is IndexAdd:
                self._idx.setdefault(u.index, {})[u.member] = u.score
                held += len(u.member) + _OVERHEAD
            elif type(u) is Remove:
                if spilled:
                    docs[u.key] = None
                else:
                    docs.pop(u.key, None)
            elif type(u) is IndexRemove:
                entries = self._idx.setdefault(u.index, {})
                if spilled:
                    entries[u.member] = None
                else:
                    entries.pop(u.member, None)
            elif type(u) is SetRemove:
                s = self._sets.setdefault(u.name, {})
                for m in u.members:
                    if spilled:
                        s[m] = False
                    else:
                        s.pop(m, None)
        if tracking is not None:
            self._tracking.setdefault(tracking.projector, {}).update(tracking.positions)
        self.held += held
        if self._make_spill is not None and self.held > self.budget:
            self.spill()

    def spill(self) -> None:
        """Write what is held into the spill store in key order and hold nothing (tracking,
        a few positions, stays)."""
        if self._make_spill is None:
            return
        if self.spilled is None:
            self.spilled = self._make_spill()
        self.spilled.write_rows(self.rows(tracking=False))
        self._docs, self._idx, self._sets = {}, {}, {}
        self.held = 0
        self.spills += 1

    def rows(self, *, tracking: bool = True) -> Rows:
        """What is held, table by table in key order (removals of spilled rows as None/False)."""
        out = Rows()
        # keys sorted alone, then looked up: sorting (key, value) pairs compares tuples
        docs = self._docs
        out.docs = [(k, docs[k]) for k in sorted(docs)]
        out.idx = [
            (name, m, entries[m])
            for name, entries in sorted(self._idx.items())
            for m in sorted(entries)
        ]
        out.sets = [
            (name, m, held[m]) for name, held in sorted(self._sets.items()) for m in sorted(held)
        ]
        if tracking:
            out.tracking = sorted(
                (proj, t, p, o) for proj, pos in self._tracking.items() for (t, p), o in pos.items()
            )
        return out

    def clear(self) -> None:
        self._docs, self._idx, self._sets, self._tracking = {}, {}, {}, {}
        self.held = 0
        if self.spilled is not None:
            self.spilled.clear()

    # -- reads -----------------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [None if d is None else dict(loads(d)) for d in self.get_many_raw(keys)]

    def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        docs = self._docs
        if self.spilled is None:
            return [docs.get(k) for k in keys]
        out = [docs.get(k) for k in keys]
        ask = [k for k in keys if k not in docs]
        if ask:
            found = dict(zip(ask, self.spilled.get_many_raw(ask), strict=True))
            out = [found.get(k, d) for k, d in zip(keys, out, strict=True)]
        return out

    def contains(self, name: str, members: Sequence[str]) -> list[bool]:
        held = self._sets.get(name, {})
        if self.spilled is None:
            return [m in held for m in members]
        ask = [m for m in members if m not in held]
        there = dict(zip(ask, self.spilled.contains(name, ask), strict=True)) if ask else {}
        return [held[m] if m in held else there[m] for m in members]

    def members(self, name: str) -> list[str]:
        held = self._sets.get(name, {})
        out = set(self.spilled.members(name)) if self.spilled is not None else set()
        out.update(m for m, p in held.items() if p)
        out.difference_update(m for m, p in held.items() if not p)
        return sorted(out)

    def _entries(self, index: str) -> list[Entry]:
        """The index's entries by (score, member): answers read indexes, a fold does not, so
        sorting them per read is cheap enough here."""
        merged: dict[str, float | None] = {}
        if self.spilled is not None:
            merged.update(self.spilled.index_range(index, limit=_ALL))
        merged.update(self._idx.get(index, {}))
        return sorted(((m, s) for m, s in merged.items() if s is not None), key=_by_score)

    def index_range(
        self,
        index: str,
        low: float = float("-inf"),
        high: float = float("inf"),
        offset: int = 0,
        limit: int = 100,
        reverse: bool = False,
    ) -> list[tuple[str, float]]:
        hits = [(m, float(s)) for m, s in self._entries(index) if low <= s <= high]
        if reverse:
            hits.reverse()
        return hits[offset : offset + limit]

    def index_floor(self, index: str, score: float) -> tuple[str, float] | None:
        return self.index_around(index, score)[0]

    def index_around(self, index: str, score: float) -> tuple[Entry | None, Entry | None]:
        below = above = None
        for m, s in self._entries(index):
            if s <= score:
                below = (m, float(s))
            elif above is None:
                above = (m, float(s))
        return below, above

    def index_around_docs(self, index: str, score: float, prefix: str) -> Around:
        below, above = self.index_around(index, score)
        keys = [prefix + member_key(e[0]) if e else "" for e in (below, above)]
        return below, above, self.get_many(keys)

    def tracking(self, projector: str) -> dict[TopicPartition, int]:
        return dict(self._tracking.get(projector, {}))

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = (
            self.spilled.snapshot()
            if self.spilled is not None
            else {"docs": {}, "indexes": {}, "sets": {}, "tracking": {}}
        )
        for k, d in self._docs.items():
            if d is None:
                snap["docs"].pop(k, None)
            else:
                snap["docs"][k] = loads(d)
        for name, entries in self._idx.items():
            idx = snap["indexes"].setdefault(name, {})
            for m, s in entries.items():
                if s is None:
                    idx.pop(m, None)
                else:
                    idx[m] = float(s)
            if not idx:
                del snap["indexes"][name]
        for name, held in self._sets.items():
            members = snap["sets"].setdefault(name, set())
            members.update(m for m, p in held.items() if p)
            members.difference_update(m for m, p in held.items() if not p)
            if not members:
                del snap["sets"][name]
        snap["tracking"] = {
            proj: {f"{t}/{p}": int(o) for (t, p), o in pos.items()}
            for proj, pos in self._tracking.items()
            if pos
        }
        return snap

    def close(self) -> None:
        """Nothing to release (the spill store is its maker's to close)."""


def _by_score(e: tuple[str, float | None]) -> tuple[float, str]:
    return (e[1] or 0.0, e[0])
