"""The projector service's lease on its views: while it holds one, only it folds them.

A running projector service (`keel service run projector`) publishes the views and signs the
checkpoints under a stable writer identity (its Kafka transactional ID). A command that folded
inline beside it took that identity and fenced the service off (issue 35). So the service
writes a lease into the views it folds (who, when renewed, for how long) and renews it while it
runs; a fold that finds a live lease held by someone else does not fold: it waits, bounded,
for the service to reach the log's end and reads what the service wrote.

A service killed without releasing its lease stops holding it after `LEASE_TTL_S`: the lease
is judged against the reader's clock, so clocks of the hosts must agree to within that (NTP).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Mapping
from typing import Any

from keel.audit.keys import projector_lease as lease_key
from keel.errors import KeelError
from keel.log.port import EventLog, TopicPartition
from keel.topics import EVENT_TOPICS
from keel.views.port import Put, Remove, ViewStore

LEASE_TTL_S = 15.0  # a holder not heard of for this long is gone
RENEW_EVERY_S = 3.0  # well inside the TTL: a slow batch or a GC pause does not lose it
SERVICE_WAIT = 120.0  # seconds a fold waits for the service to reach the log's end

__all__ = ["LeaseKeeper", "holder", "lease_key", "live_holder", "unfolded", "wait_for_service"]


def live_holder(doc: Mapping[str, Any] | None, now_ms: int) -> str | None:
    """Who holds the lease `doc` at `now_ms`, or None (no lease, released or lapsed)."""
    if not doc or not doc.get("holder"):
        return None
    if now_ms - int(doc.get("renewed_ms", 0)) >= int(doc.get("ttl_ms", 0)):
        return None
    return str(doc["holder"])


def holder(views: ViewStore, name: str) -> str | None:
    """The live holder of projector `name`'s lease in `views`."""
    return live_holder(views.get(lease_key(name)), int(time.time() * 1000))


class LeaseKeeper:
    """The lease as its holder keeps it: taken on start (a newer service takes over, as its
    writer fences the older one), renewed at most every `RENEW_EVERY_S`, released on a clean
    stop if still its own."""

    def __init__(self, views: ViewStore, name: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.views, self.key, self.ttl_ms = views, lease_key(name), int(ttl_s * 1000)
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._renewed = float("-inf")

    def renew(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._renewed < RENEW_EVERY_S:
            return
        doc = {"holder": self.holder, "renewed_ms": int(time.time() * 1000), "ttl_ms": self.ttl_ms}
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
