"""How many events the projector service folds a batch (decision 0040).

A live event waits for the batch it lands in, and each batch is one views write: 5000 a batch
(the projector's `batch_size`) keeps both small. A service started far behind (a home with 1M
unfolded events) pays for every commit walking the pages its batch dirtied: 20000 a batch made
the writes ~24% cheaper an event (decision 0034). So the service folds `CATCH_UP` a batch while
more than one normal batch waits, and the normal size once it has caught up.

The service renews its lease on the views between batches (keel.audit.lease: readers count it
lapsed after `LEASE_TTL_S` without a renewal), so a batch must not outlast the lease: a large
batch is cut to what the batches before it say fits in `BUDGET_S`, never below the normal
size. The first large batch has nothing measured before it: decision 0040 has how long one
takes on a 1M home under load.

Commands (`Projector.run`: `keel audit project`, the pipeline's and verify's catch-up) size
their batches the same way but untimed (`timed=False`): they hold no lease, so nothing bounds a
batch's time, and their read-ahead (keel.audit.prefetch) stays on, which a timed batch could
not have (it would time its read only). Decision 0040's "commands" section has the figures.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from keel.audit.lease import LEASE_TTL_S, RENEW_EVERY_S

CATCH_UP = 20_000  # decision 0034's batch for a whole-log fold
# a renewal is at most RENEW_EVERY_S plus one batch after the one before: half of what is
# left of the TTL, so a batch twice as slow as the one measured before it still renews in time
BUDGET_S = (LEASE_TTL_S - RENEW_EVERY_S) / 2

T = TypeVar("T")


def batch_size(
    behind: int, normal: int, large: int, seconds_per_event: float | None, budget_s: float
) -> int:
    """The next batch's size: `normal` unless more than a normal batch waits (`behind`
    records); then `large`, cut to `budget_s` at the pace measured so far (None: none yet)."""
    if behind <= normal or large <= normal:
        return normal
    if not seconds_per_event:
        return large
    return max(normal, min(large, int(budget_s / seconds_per_event)))


def lag(ends: Mapping[T, int], positions: Mapping[T, int]) -> int:
    """Records between the views' positions and the log's end offsets (Kafka's transaction
    markers count too: an estimate, a little high)."""
    return sum(max(0, end - positions.get(tp, 0)) for tp, end in ends.items())


class Pacer:
    """Batch sizes for one fold as it goes: `expect` what waits (the lag at the start), ask
    `size` before each batch and say what it `took` after it is written. A batch that came
    back full says more may wait; one that came back short, that the fold reached the log's
    end. A timed pacer (a lease holder's) measures each batch of at least the normal size, so
    the next one fits the budget; an untimed one (a command's) sizes by what waits alone."""

    def __init__(
        self,
        normal: int,
        large: int | None = None,
        budget_s: float = BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
        timed: bool = True,
    ) -> None:
        self.normal, self.large = normal, large or normal
        self.budget_s, self.clock = budget_s, clock
        self.timed = timed
        self.behind = 0
        self.seconds_per_event: float | None = None
        self._asked, self._started = normal, 0.0

    @property
    def varies(self) -> bool:
        return self.large > self.normal

    @property
    def times(self) -> bool:
        """Whether batch sizes depend on how long batches take (then a batch must be read,
        folded and written between `size` and `took`: no read-ahead)."""
        return self.varies and self.timed

    def expect(self, behind: int) -> None:
        self.behind = behind

    def size(self) -> int:
        self._asked = batch_size(
            self.behind, self.normal, self.large, self.seconds_per_event, self.budget_s
        )
        self._started = self.clock()
        return self._asked

    def took(self, n: int) -> None:
        if self.timed and n >= self.normal:
            self.seconds_per_event = (self.clock() - self._started) / n
        if n < self._asked:
            self.behind = 0
        else:
            self.behind = max(self.behind - n, self.normal + 1)

    def chunks(self, records: Iterator[T]) -> Iterator[list[T]]:
        """`records` in batches of the sizes this pacer chooses."""
        while batch := list(itertools.islice(records, self.size())):
            yield batch
            self.took(len(batch))
