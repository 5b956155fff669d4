"""The projector service's batch sizes (keel.audit.batching, decision 0040): larger while more
than a normal batch waits, the normal size once caught up, and no batch longer than the lease's
budget at the pace measured so far. A clock the test turns stands in for time."""

from __future__ import annotations

import pytest

from keel.audit.batching import BUDGET_S, CATCH_UP, Pacer, batch_size, lag
from keel.audit.lease import LEASE_TTL_S, RENEW_EVERY_S

pytestmark = pytest.mark.unit


def test_the_larger_batch_only_while_more_than_a_batch_waits() -> None:
    assert batch_size(1_000_000, 5000, 20_000, None, 6.0) == 20_000
    assert batch_size(5001, 5000, 20_000, None, 6.0) == 20_000
    assert batch_size(5000, 5000, 20_000, None, 6.0) == 5000  # caught up: a live event's batch
    assert batch_size(0, 5000, 20_000, None, 6.0) == 5000
    assert batch_size(1_000_000, 5000, 5000, None, 6.0) == 5000  # no larger one configured


def test_a_large_batch_is_cut_to_the_budget_at_the_measured_pace() -> None:
    assert batch_size(10**6, 5000, 20_000, 100e-6, 6.0) == 20_000  # 2 s: fits
    assert batch_size(10**6, 5000, 20_000, 500e-6, 6.0) == 12_000  # 10 s would not
    assert batch_size(10**6, 5000, 20_000, 0.01, 6.0) == 5000  # never below the normal size


def test_the_budget_leaves_the_lease_room() -> None:
    # a renewal comes at most RENEW_EVERY_S plus one batch after the one before; a batch
    # twice as slow as measured must still land inside the TTL
    assert RENEW_EVERY_S + 2 * BUDGET_S <= LEASE_TTL_S
    assert CATCH_UP > 5000


def test_lag_counts_what_lies_past_the_positions() -> None:
    ends = {("a", 0): 10, ("a", 1): 5, ("b", 0): 7}
    assert lag(ends, {("a", 0): 4, ("a", 1): 5}) == 6 + 0 + 7
    assert lag(ends, {("a", 0): 12}) == 5 + 7  # never negative


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_catch_up_then_live_events() -> None:
    """45,000 waiting: two large batches, then what is left; then live events one poll at a
    time at the normal size (a full poll says more waits: the larger size again)."""
    clock = Clock()
    pacer = Pacer(5000, 20_000, budget_s=6.0, clock=clock)
    pacer.expect(45_000)
    sizes = []
    for batch in pacer.chunks(iter(range(45_000))):
        sizes.append(len(batch))
        clock.now += len(batch) * 100e-6
    assert sizes == [20_000, 20_000, 5000]
    assert pacer.size() == 5000  # caught up
    pacer.took(3)  # a live poll: 3 events
    assert pacer.size() == 5000
    pacer.took(5000)  # a full poll: a burst arrived
    assert pacer.size() == 20_000
    pacer.took(700)
    assert pacer.size() == 5000


def test_a_slow_machine_gets_smaller_large_batches() -> None:
    clock = Clock()
    pacer = Pacer(5000, 20_000, budget_s=6.0, clock=clock)
    pacer.expect(100_000)
    sizes = []
    for batch in pacer.chunks(iter(range(100_000))):
        sizes.append(len(batch))
        clock.now += len(batch) * 1e-3  # 1 ms an event: 20 s for a 20,000 batch
    assert sizes[0] == 20_000  # nothing measured before the first
    assert sizes[1:] == [6000] * 13 + [2000]  # 6 s each at the pace measured
    assert sum(sizes) == 100_000


def test_a_fixed_pacer_is_the_old_chunking() -> None:
    pacer = Pacer(5000)
    assert not pacer.varies
    assert [len(b) for b in pacer.chunks(iter(range(12_345)))] == [5000, 5000, 2345]


def test_an_untimed_pacer_sizes_by_what_waits_alone() -> None:
    """A command's (no lease): large batches however slow they are, and no timing, so its
    read-ahead may read a batch before the one before it is written."""
    clock = Clock()
    pacer = Pacer(5000, 20_000, budget_s=6.0, clock=clock, timed=False)
    assert pacer.varies and not pacer.times
    assert Pacer(5000, 20_000).times and not Pacer(20_000, 20_000, timed=False).times
    pacer.expect(100_000)
    sizes = []
    for batch in pacer.chunks(iter(range(100_000))):
        sizes.append(len(batch))
        clock.now += len(batch) * 1e-3  # 20 s a large batch: a timed pacer cuts to 6000
    assert sizes == [20_000] * 5
