"""The lease rule on its own: who holds a projector's views, judged by a reader's own clock."""

from __future__ import annotations

import pytest

from keel.audit.keys import is_projector_lease
from keel.audit.lease import judge, lease_key
from keel.audit.projection import STATS

pytestmark = pytest.mark.unit


def test_a_lease_is_held_while_its_count_moves_within_the_ttl() -> None:
    doc = {"holder": "host/1/ab", "beat": 1, "renewed_ms": 10_000, "ttl_ms": 15_000}
    who, seen = judge(doc, None, 100.0)  # first met: held, for a TTL from now
    assert who == "host/1/ab"
    assert judge(doc, seen, 114.9)[0] == "host/1/ab"
    assert judge(doc, seen, 115.0)[0] is None  # lapsed: not renewed for a whole TTL
    renewed = {**doc, "beat": 2}
    who, later = judge(renewed, seen, 114.0)
    assert who == "host/1/ab" and later is not None and later.since == 114.0
    assert judge(renewed, later, 128.9)[0] == "host/1/ab"


def test_hosts_clocks_do_not_matter() -> None:
    """Issue 35: the lease compared the holder's wall clock with the reader's; they had to agree
    within the TTL. A holder an hour behind was judged gone while it ran (commands then folded
    beside it and fenced it off); one an hour ahead, killed, held the views for an hour."""
    behind = {"holder": "slow/1/ab", "beat": 7, "renewed_ms": 0, "ttl_ms": 15_000}
    who, seen = judge(behind, None, 5.0)
    for t in range(6, 60, 3):  # it keeps renewing: held all along, whatever its stamp says
        behind = {**behind, "beat": behind["beat"] + 1}
        who, seen = judge(behind, seen, float(t))
        assert who == "slow/1/ab"
    ahead = {"holder": "fast/1/cd", "beat": 3, "renewed_ms": 10**13, "ttl_ms": 15_000}
    who, seen = judge(ahead, None, 5.0)
    assert who == "fast/1/cd"
    assert judge(ahead, seen, 20.0)[0] is None  # killed: lapsed one TTL after last seen moving


def test_a_lease_without_the_counter_moves_with_its_stamp() -> None:
    old = {"holder": "h/1/x", "renewed_ms": 1, "ttl_ms": 1000}  # written by a service before it
    _, seen = judge(old, None, 0.0)
    assert judge({**old, "renewed_ms": 2}, seen, 0.9)[1] != seen


def test_no_lease_or_a_released_one_is_held_by_nobody() -> None:
    assert judge(None, None, 0.0) == (None, None)
    assert judge({}, None, 0.0) == (None, None)
    assert judge({"holder": "", "beat": 1, "ttl_ms": 10}, None, 0.0) == (None, None)


def test_the_lease_key_is_told_apart_from_the_fold_s_own_keys() -> None:
    assert is_projector_lease(lease_key("audit"))
    assert not is_projector_lease(STATS)
