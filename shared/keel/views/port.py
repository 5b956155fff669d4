"""The ViewStore port: what a projector writes and what queries read.

- documents by key (JSON objects);
- indexes: members ordered by a numeric score (e.g. occurred_at in ms), for "as of T" lookups;
- sets: named sets of strings (e.g. the event IDs a projector has applied), added to in bulk
  and probed in bulk, so per-event bookkeeping costs one command per batch, not one per event;
- tracking: per projector, the next log position to read for each (topic, partition).

`apply(updates, tracking)` is atomic: after a crash, either the whole batch and its tracking
position are visible, or neither is. That is what makes a restarted projector exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from keel.log.port import TopicPartition


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    doc: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Remove:
    key: str


@dataclass(frozen=True, slots=True)
class IndexAdd:
    index: str
    member: str
    score: float


@dataclass(frozen=True, slots=True)
class IndexRemove:
    index: str
    member: str


@dataclass(frozen=True, slots=True)
class SetAdd:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetRemove:
    name: str
    members: tuple[str, ...]


Update = Put | Remove | IndexAdd | IndexRemove | SetAdd | SetRemove


Entry = tuple[str, float]  # (member, score) of an index

# (entry at or below, entry above, [document of the one below, document of the one above])
Around = tuple[Entry | None, Entry | None, list[dict[str, Any] | None]]


def member_key(member: str) -> str:
    """The part of an index member that names its document: what follows its last "@" (a
    member may lead with an ordering prefix, e.g. when it was recorded, that is not part of its
    document's key). The Redis adapter's script applies the same rule; the contract suite
    checks that both adapters agree."""
    return member.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class Tracking:
    projector: str
    positions: Mapping[TopicPartition, int]
    # The positions the batch was folded from: the apply is refused (StaleTracking) unless the
    # stored ones still equal them, so two processes folding the same records (a command
    # catching the views up beside the projector service) never apply an event twice.
    since: Mapping[TopicPartition, int] | None = None


class StaleTracking(Exception):
    """Another writer moved the projector's tracking since the batch was folded: nothing of it
    was written; re-read the tracking and fold from there."""


class ViewStore(Protocol):
    def apply(self, updates: Sequence[Update], tracking: Tracking | None = None) -> None:
        """Write every update and the tracking positions in one atomic step; with
        `tracking.since`, only if the stored positions still equal it (else StaleTracking)."""
        ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...

    def get_many_raw(self, keys: Sequence[str]) -> list[bytes | None]:
        """`get_many` as the stored canonical JSON bytes (keel.views.docjson), not parsed: for
        the native fold, which parses them itself (no dict built only to be encoded again)."""
        ...

    def index_range(
        self,
        index: str,
        low: float = float("-inf"),
        high: float = float("inf"),
        offset: int = 0,
        limit: int = 100,
        reverse: bool = False,
    ) -> list[tuple[str, float]]:
        """(member, score) pairs with low <= score <= high, paginated."""
        ...

    def index_floor(self, index: str, score: float) -> tuple[str, float] | None:
        """The member with the greatest score <= `score` ("what was current at T")."""
        ...

    def index_around(
        self, index: str, score: float
    ) -> tuple[tuple[str, float] | None, tuple[str, float] | None]:
        """(the member with the greatest score <= `score`, the one with the least score >
        `score`) in one call: "what was current at T, and what came next" (one round trip)."""
        ...

    def index_around_docs(self, index: str, score: float, prefix: str) -> Around:
        """`index_around` and the documents of both members in one call (one round trip on a
        server): each at key `prefix` + `member_key(member)`."""
        ...

    def contains(self, name: str, members: Sequence[str]) -> list[bool]:
        """For each member, whether it is in set `name` (one round trip for the lot)."""
        ...

    def members(self, name: str) -> list[str]:
        """Every member of set `name`, sorted (for small sets)."""
        ...

    def tracking(self, projector: str) -> dict[TopicPartition, int]: ...

    def clear(self) -> None:
        """Drop every view and tracking position (for a rebuild)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Every document, index entry, set and tracking position: for comparing two stores entry
        by entry (a rebuild must equal the original) and for export."""
        ...

    def close(self) -> None: ...
