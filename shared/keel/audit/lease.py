"""The projector service's lease on its views: while it holds one, only it folds them.

A running projector service (`keel service run projector`) publishes the views and signs the
checkpoints under a stable writer identity (its Kafka transactional ID). A command that folded
inline beside it took that identity and fenced the service off (issue 35). So the service
writes a lease into the views it folds (who, when renewed, for how long) and renews it while it
runs; a fold that finds a live lease held by someone else does not fold: it waits, bounded,
for the service to reach the log's end and reads what the service wrote.

A service killed without releasing its lease stops holding it after `LEASE_TTL_S`. No two
hosts' clocks are compared (issue 35: they had to agree within the TTL): the holder bumps a
renewal counter (`beat`) in the lease, and a reader judges with its own monotonic clock
whether the counter moved within the TTL since it first saw its current value. A reader that
just met a lease therefore counts it as held until it has watched it for the TTL
(`confirmed_holder` watches at most that long when the answer decides something).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.audit.keys import projector_lease as lease_key
from keel.errors import KeelError
from keel.log.port import EventLog, TopicPartition
from keel.topics import EVENT_TOPICS
from keel.views.port import Put, Remove, ViewStore

LEASE_TTL_S = 15.0  # a holder not heard of for this long is gone
RENEW_EVERY_S = 3.0  # well inside the TTL: a slow batch or a GC pause does not lose it
SERVICE_WAIT = 120.0  # seconds a fold waits for the service to reach the log's end

__all__ = [
    "LeaseKeeper",
    "Seen",
    "confirmed_holder",
    "holder",
    "judge",
    "lease_key",
    "unfolded",
    "wait_for_service",
]


@dataclass(frozen=True)
class Seen:
    """A reader's memory of a lease: its holder and renewal count, and when (the reader's own
    monotonic clock, seconds) it first saw that count."""

    holder: str
    beat: Any
    since: float


def judge(
    doc: Mapping[str, Any] | None, seen: Seen | None, now: float
) -> tuple[str | None, Seen | None]:
    """Who holds the lease `doc`, as a reader that remembers `seen` judges it at `now` (its
    monotonic clock), and what it remembers next. Held while its count moved within the
    lease's TTL as this reader watched; no wall clock of any host is read. A lease of a
    version without the counter counts its renewal stamp as the counter."""
    if not doc or not doc.get("holder"):
        return None, None
    who, beat = str(doc["holder"]), doc.get("beat", doc.get("renewed_ms"))
    if seen is None or (seen.holder, seen.beat) != (who, beat):
        return who, Seen(who, beat, now)  # moved (or first met): held, for a TTL from now
    if now - seen.since >= int(doc.get("ttl_ms", 0)) / 1000:
        return None, seen  # not renewed for a whole TTL: lapsed
    return who, seen


# What this process saw of each store's leases (a reader's memory, per views object).
_SEEN: weakref.WeakKeyDictionary[Any, dict[str, Seen | None]] = weakref.WeakKeyDictionary()


def holder(views: ViewStore, name: str) -> str | None:
    """The live holder of projector `name`'s lease in `views`, as this process has watched it."""
    key = lease_key(name)
    try:
        memory = _SEEN.setdefault(views, {})
    except TypeError:  # a store that takes no weak reference: judged afresh every time
        memory = {}
    who, memory[key] = judge(views.get(key), memory.get(key), time.monotonic())
    return who


def confirmed_holder(views: ViewStore, name: str) -> str | None:
    """holder() for a decision taken at once (refusing a command): a lease is watched until
    its holder renews it (a live one does every RENEW_EVERY_S: alive) or its TTL passes
    without a renewal (a holder killed without releasing it: lapsed, None)."""
    key = lease_key(name)
    who, seen = judge(views.get(key), None, time.monotonic())
    while who is not None:
        time.sleep(0.2)
        who, now = judge(views.get(key), seen, time.monotonic())
        if who is not None and now is not seen:
            return who  # renewed while watched
    return None


class LeaseKeeper:
    """The lease as its holder keeps it: taken on start (a newer service takes over, as its
    writer fences the older one), renewed at most every `RENEW_EVERY_S`, released on a clean
    stop if still its own."""

    def __init__(self, views: ViewStore, name: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.views, self.key, self.ttl_ms = views, lease_key(name), int(ttl_s * 1000)
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._renewed = float("-inf")
        self._beat = 0

    def renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < RENEW_EVERY_S:
            return
        self._beat += 1  # readers judge by this moving, not by any clock
        doc = {
            "holder": self.holder,
            "beat": self._beat,
            "renewed_ms": int(time.time() * 1000),  # for people reading the views only
            "ttl_ms": self.ttl_ms,
        }
        self.views.apply([Put(self.key, doc)])
        self._renewed = time.monotonic()

    def release(self) -> None:
        if (self.views.get(self.key) or {}).get("holder") == self.holder:
            self.views.apply([Remove(self.key)])


def unfolded(
    log: EventLog, needed: Mapping[TopicPartition, int], reached: Mapping[TopicPartition, int]
) -> bool:
    """Whether a record lies between what the projector reached and `needed` (end offsets).
    Tracking says "after the last record folded", while a transactional log's end also counts
    commit markers: where tracking is short of an end, the gap is read to see whether it holds
    a record at all."""
    short = {tp: end for tp, end in needed.items() if reached.get(tp, 0) < end}
    if not short:
        return False
    topics = sorted({t for t, _ in short})
    start = {tp: reached.get(tp, 0) for tp in needed if tp[0] in topics}
    return any(rec.offset < short.get(rec.tp, 0) for rec in log.read(topics, start))


def wait_for_service(
    log: EventLog, views: ViewStore, name: str, timeout: float = SERVICE_WAIT
) -> str | None:
    """While a projector service holds the lease: wait for it to fold every record the log
    holds now and return its holder name. None: no live lease (any more), so the caller folds.
    A holder still behind after `timeout` seconds is an error: nothing is decided on views
    that are behind, and taking its identity would stop it."""
    first = holder(views, name)
    if first is None:
        return None
    needed = log.end_offsets(EVENT_TOPICS)
    deadline = time.monotonic() + timeout
    while True:
        if not unfolded(log, needed, views.tracking(name)):
            return first
        if holder(views, name) is None:
            return None  # it stopped (or died) meanwhile: the caller folds
        if time.monotonic() > deadline:
            raise KeelError(
                f"the projector service ({first}) has not folded the log's newest events "
                f"after waiting {timeout:.0f} s; while it runs, only it folds these views",
                hint="check the projector service's output (`keel service run projector`); "
                "if it is gone, its lease lapses within "
                f"{LEASE_TTL_S:.0f} s and commands fold again",
            )
        time.sleep(0.1)
