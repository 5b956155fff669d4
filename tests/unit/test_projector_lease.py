"""The lease rule on its own: who holds a projector's views, judged at a given time."""

from __future__ import annotations

import pytest

from keel.audit.keys import is_projector_lease
from keel.audit.lease import lease_key, live_holder
from keel.audit.projection import STATS

pytestmark = pytest.mark.unit


def test_a_lease_is_held_until_its_ttl_runs_out() -> None:
    doc = {"holder": "host/1/ab", "renewed_ms": 10_000, "ttl_ms": 15_000}
    assert live_holder(doc, 10_000) == "host/1/ab"
    assert live_holder(doc, 24_999) == "host/1/ab"
    assert live_holder(doc, 25_000) is None  # lapsed: the holder was not heard of in time
    assert live_holder(doc, 9_000) == "host/1/ab"  # a reader's clock a little behind


def test_no_lease_or_a_released_one_is_held_by_nobody() -> None:
    assert live_holder(None, 0) is None
    assert live_holder({}, 0) is None
    assert live_holder({"holder": "", "renewed_ms": 0, "ttl_ms": 10}, 0) is None


def test_the_lease_key_is_told_apart_from_the_fold_s_own_keys() -> None:
    assert is_projector_lease(lease_key("audit"))
    assert not is_projector_lease(STATS)
