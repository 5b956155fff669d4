"""The promotion gate: thresholds, direction of metrics, the incumbent rule, missing metrics."""

from __future__ import annotations

import pytest

from keel.project import BeatIncumbent, Policy
from services.promote.domain import Incumbent, decide

pytestmark = pytest.mark.unit

POLICY = Policy(
    thresholds={"roc_auc": 0.9, "log_loss": 0.3},
    beat_incumbent=BeatIncumbent(metric="roc_auc", by=0.01),
)


def test_first_model_passes_thresholds_with_no_incumbent() -> None:
    d = decide({"roc_auc": 0.95, "log_loss": 0.2}, None, POLICY)
    assert d.promoted and d.failed == []
    assert "no incumbent to beat" in d.reason


def test_lower_is_better_metrics_gate_as_at_most() -> None:
    d = decide({"roc_auc": 0.95, "log_loss": 0.35}, None, POLICY)
    assert not d.promoted and d.failed == ["log_loss_threshold"]
    gate = next(g for g in d.gates if g.metric == "log_loss")
    assert gate.op == "<=" and gate.margin == pytest.approx(-0.05)
    assert "misses <= 0.3 by 0.0500" in d.reason


def test_must_beat_incumbent_by_delta() -> None:
    inc = Incumbent("a" * 64, {"roc_auc": 0.95})
    short = decide({"roc_auc": 0.955, "log_loss": 0.1}, inc, POLICY)
    assert not short.promoted and short.failed == ["beats_incumbent"]
    assert "short by 0.0050" in short.reason and "aaaaaaaaaaaa" in short.reason
    enough = decide({"roc_auc": 0.96, "log_loss": 0.1}, inc, POLICY)
    assert enough.promoted
    assert next(g for g in enough.gates if g.name == "beats_incumbent").margin == pytest.approx(0)


def test_missing_metric_fails_its_gate() -> None:
    d = decide({"log_loss": 0.1}, None, POLICY)
    assert not d.promoted and "roc_auc_threshold" in d.failed
    assert "roc_auc was not measured" in d.reason


def test_empty_policy_promotes() -> None:
    assert decide({"roc_auc": 0.1}, None, Policy()).promoted
