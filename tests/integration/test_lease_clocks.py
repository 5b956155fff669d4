"""Issue 35: the projector's lease compared wall clocks of two hosts. On real Redis views, a
holder whose clock is an hour behind (stamps an hour old) is held while it renews, and one whose
clock is an hour ahead, killed without releasing, lapses one TTL after it stopped renewing."""

from __future__ import annotations

import time
import uuid

import pytest

from keel.audit.lease import confirmed_holder, holder, lease_key
from keel.views.port import Put
from keel.views.redis import RedisViewStore

pytestmark = pytest.mark.integration
HOUR_MS = 3_600_000


def stamp(views: RedisViewStore, who: str, beat: int, skew_ms: int, ttl_ms: int) -> None:
    """A renewal as a holder whose wall clock is `skew_ms` off writes it."""
    renewed = int(time.time() * 1000) + skew_ms
    views.apply(
        [
            Put(
                lease_key("audit"),
                {"holder": who, "beat": beat, "renewed_ms": renewed, "ttl_ms": ttl_ms},
            )
        ]
    )


def test_a_holder_an_hour_behind_holds_the_lease_while_it_renews(redis_url: str) -> None:
    views = RedisViewStore(redis_url, namespace=f"lease{uuid.uuid4().hex[:8]}:")
    try:
        for beat in range(1, 6):
            stamp(views, "slow/1/ab", beat, -HOUR_MS, 15_000)
            assert holder(views, "audit") == "slow/1/ab"  # before: None, so commands folded
    finally:
        views.clear()
        views.close()


def test_a_killed_holder_an_hour_ahead_lapses_after_its_ttl(redis_url: str) -> None:
    views = RedisViewStore(redis_url, namespace=f"lease{uuid.uuid4().hex[:8]}:")
    try:
        stamp(views, "fast/1/cd", 3, HOUR_MS, 300)  # then killed: never renewed again
        assert holder(views, "audit") == "fast/1/cd"
        assert confirmed_holder(views, "audit") is None  # watched one TTL: not renewed
        assert holder(views, "audit") is None  # before: held for the hour its clock is ahead
    finally:
        views.clear()
        views.close()
