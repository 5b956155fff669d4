"""The audit fold: serving intervals, lookups at a time, duplicates skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keel.audit.folds import AuditState, fold
from services.deploy.domain import rollback_target
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit


def t(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def test_serving_intervals_answer_which_model_at_a_time() -> None:
    events = [make_deployed("A", at=t(1)), make_deployed("B", at=t(3)), make_deployed("C", at=t(6))]
    s = fold(events)
    assert s.serving_at("fam", "prod", t(2)).model_id == "A"  # type: ignore[union-attr]
    assert s.serving_at("fam", "prod", t(3)).model_id == "B"  # type: ignore[union-attr]
    assert s.serving_at("fam", "prod", t(12)).model_id == "C"  # type: ignore[union-attr]
    assert s.serving_at("fam", "prod", datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert s.serving_at("fam", "staging", t(2)) is None
    assert s.serving_now("fam", "prod").model_id == "C"  # type: ignore[union-attr]
    ivs = s.serving[("fam", "prod")]
    assert [(iv.start, iv.end) for iv in ivs] == [(t(1), t(3)), (t(3), t(6)), (t(6), None)]


def test_duplicate_events_are_applied_once() -> None:
    e = make_deployed("A", at=t(1))
    s = fold([e, e, e])
    assert s.applied == 1 and len(s.serving[("fam", "prod")]) == 1


def test_backdated_deployment_keeps_intervals_in_time_order() -> None:
    s = fold(
        [make_deployed("A", at=t(1)), make_deployed("C", at=t(6)), make_deployed("B", at=t(3))]
    )
    assert [iv.model_id for iv in s.serving[("fam", "prod")]] == ["A", "B", "C"]
    assert s.serving_at("fam", "prod", t(4)).model_id == "B"  # type: ignore[union-attr]
    assert s.serving_now("fam", "prod").model_id == "C"  # type: ignore[union-attr]


def test_rollback_goes_to_the_previous_model_or_a_named_one() -> None:
    s = fold([make_deployed(m, at=t(i + 1)) for i, m in enumerate(["A" * 12, "B" * 12, "C" * 12])])
    ivs = s.serving[("fam", "prod")]
    assert rollback_target(ivs, None).model_id == "B" * 12
    assert rollback_target(ivs, "AAAA").model_id == "A" * 12
    with pytest.raises(Exception, match="never served here"):
        rollback_target(ivs, "ZZZZ")
    with pytest.raises(Exception, match="nothing is serving"):
        rollback_target(AuditState().serving.get(("fam", "prod"), []), None)
