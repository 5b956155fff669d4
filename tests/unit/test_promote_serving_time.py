"""The gate's sentence names the time its incumbent was read at: what served the environment
at the decision's business time, nothing, or the candidate itself."""

from __future__ import annotations

import pytest

from keel.metrics import higher_is_better
from keel.project import BeatIncumbent, Policy
from keel_services.promote.domain import Incumbent, Serving, decide

pytestmark = pytest.mark.unit

POLICY = Policy(thresholds={"accuracy": 0.6}, beat_incumbent=BeatIncumbent(metric="accuracy"))
METRICS = {"accuracy": 0.91}


def multiclass(metric: str) -> bool:
    return higher_is_better("multiclass", metric)


def test_nothing_serving_then_is_said_with_the_time() -> None:
    d = decide(METRICS, None, POLICY, multiclass, Serving("prod at 2025-01-31T00:00:00Z"))
    assert d.promoted
    assert "no incumbent to beat: no model was serving prod at 2025-01-31T00:00:00Z" in d.reason


def test_the_incumbent_is_named_with_when_it_served() -> None:
    inc = Incumbent("a" * 64, {"accuracy": 0.95})
    d = decide(METRICS, inc, POLICY, multiclass, Serving("prod at 2026-02-01T00:00:00Z"))
    assert not d.promoted
    assert "incumbent aaaaaaaaaaaa (serving prod at 2026-02-01T00:00:00Z)" in d.reason


def test_the_candidate_already_serving_is_not_called_no_incumbent() -> None:
    d = decide(METRICS, None, POLICY, multiclass, Serving("prod at 2026-03-01T00:00:00Z", True))
    assert "it was already serving prod at 2026-03-01T00:00:00Z" in d.reason
