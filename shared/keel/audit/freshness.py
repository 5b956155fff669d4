"""Views kept at the log's end for readers, with a freshness check that costs O(topics) plus
O(new events), never O(history).

The check compares the log's end offsets with the ends the last fold reached, and folds only
when the log moved. Where asking for the ends is a local query (the SQLite log: one index probe
per topic) it runs on every check, so a reader sees its own writes. Where it is a network round
trip (Kafka), a watcher thread asks every `watch_every` seconds and folds when the ends move;
a check then reads the watcher's last state and says how old it is.

Ends are compared with ends, not with the views' tracking positions: on Kafka a committed
transaction's marker takes an offset, so the position after the last record stays one short of
the end offset for ever, while the end a fold started from is exactly where it read to.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.port import EventLog, TopicPartition
from keel.signing import Signer
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore

logger = logging.getLogger(__name__)
Ends = dict[TopicPartition, int]


@dataclass(frozen=True)
class Freshness:
    """How current an answer is: `lag` offsets of the log not yet in the views (0: none, as of
    `checked_ms_ago`), and the views' tracking positions ("topic/partition" -> next offset)."""

    lag: int
    checked_ms_ago: float
    positions: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "lag": self.lag,
            "checked_ms_ago": round(self.checked_ms_ago, 3),
            "positions": self.positions,
        }


def lag(ends: Ends, reached: Ends) -> int:
    return sum(max(0, end - reached.get(tp, 0)) for tp, end in ends.items())


class FreshViews:
    def __init__(
        self,
        log: EventLog,
        views: ViewStore,
        codec: Codec,
        signer: Signer | None = None,
        name: str = "audit",
        watch_every: float | None = None,
    ) -> None:
        self.log, self.views, self.codec, self.signer, self.name = log, views, codec, signer, name
        self._lock = threading.Lock()
        self._folded: Ends | None = None  # the ends the last fold read to
        self._ends: Ends = {}
        self._checked = 0.0
        self._last = -1
        self._positions: dict[str, int] = {}
        self._stop = threading.Event()
        self.watch_every = watch_every
        self.folds = 0  # how many checks found the log moved and folded (for tests, metrics)
        if watch_every is not None:
            self._refresh()
            threading.Thread(target=self._watch, name="keel-fresh-views", daemon=True).start()

    def check(self) -> Freshness:
        if self.watch_every is None:
            self._refresh()
        ends, folded = self._ends, self._folded or {}
        return Freshness(
            lag(ends, folded), (time.monotonic() - self._checked) * 1000, self._positions
        )

    def close(self) -> None:
        self._stop.set()

    def _refresh(self) -> None:
        probe = getattr(self.log, "last_offset", None)  # a cheaper "did anything change?"
        if probe is not None:
            last = probe()
            if last == self._last and self._folded is not None:
                self._checked = time.monotonic()
                return
            self._last = last
        ends = self.log.end_offsets(EVENT_TOPICS)
        self._ends, self._checked = ends, time.monotonic()
        if ends == self._folded:
            return
        with self._lock:
            if ends == self._folded:  # another thread folded while this one waited
                return
            Projector(self.log, self.views, self.codec, name=self.name, signer=self.signer).run()
            self._folded = ends  # the run read at least to these
            self._positions = {
                f"{t}/{p}": o for (t, p), o in sorted(self.views.tracking(self.name).items())
            }
            self.folds += 1

    def _watch(self) -> None:
        assert self.watch_every is not None
        while not self._stop.wait(self.watch_every):
            try:
                self._refresh()
            except Exception as exc:  # never die: answers say how old their check is
                logger.error("views freshness watcher: %s", exc)
