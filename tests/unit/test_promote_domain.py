"""The promotion gate: thresholds, direction of metrics, the incumbent rule, missing metrics."""

from __future__ import annotations

import pytest

from keel.metrics import higher_is_better
from keel.project import BeatIncumbent, Policy
from keel_services.promote.domain import Incumbent
from keel_services.promote.domain import decide as decide_with


def decide(metrics: dict[str, float], inc: Incumbent | None, policy: Policy, task: str = "binary"):  # type: ignore[no-untyped-def]
    return decide_with(metrics, inc, policy, lambda m: higher_is_better(task, m))


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


def test_a_policy_without_gates_must_say_so() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match='gates = "none"'):
        Policy()
    d = decide({"roc_auc": 0.1}, None, Policy(gates="none"))
    assert d.promoted and d.gates == () and 'gates = "none"' in d.reason


def test_regression_gates_read_lower_rmse_as_better() -> None:
    policy = Policy(
        thresholds={"rmse": 60.0, "r2": 0.3}, beat_incumbent=BeatIncumbent(metric="rmse", by=1.0)
    )
    inc = Incumbent("b" * 64, {"rmse": 55.0, "r2": 0.4})
    better = decide({"rmse": 53.5, "r2": 0.45}, inc, policy, "regression")
    assert better.promoted, better.reason
    gate = next(g for g in better.gates if g.name == "rmse_threshold")
    assert gate.op == "<=" and gate.margin == pytest.approx(6.5)
    worse = decide({"rmse": 54.5, "r2": 0.45}, inc, policy, "regression")
    assert not worse.promoted and worse.failed == ["beats_incumbent"]
    assert "short by 0.5000" in worse.reason


def test_a_tie_with_the_incumbent_is_called_a_tie() -> None:
    policy = Policy(thresholds={"accuracy": 0.5}, beat_incumbent=BeatIncumbent(metric="accuracy"))
    inc = Incumbent("c" * 64, {"accuracy": 0.9})
    tie = decide({"accuracy": 0.9}, inc, policy, "multiclass")
    assert tie.promoted and "ties incumbent cccccccccccc" in tie.reason
    strict = Policy(
        thresholds={"accuracy": 0.5}, beat_incumbent=BeatIncumbent(metric="accuracy", by=0.01)
    )
    assert "ties incumbent" in decide({"accuracy": 0.9}, inc, strict, "multiclass").reason


def test_rollback_may_target_a_model_that_once_passed_the_gate() -> None:
    from datetime import UTC, datetime

    import pytest

    from keel.audit.readmodel import Interval
    from keel.errors import KeelError
    from keel_services.deploy.domain import Target, rollback_target

    t = datetime(2025, 1, 1, tzinfo=UTC)
    ivs = [
        Interval("f", "prod", "a" * 64, t, t, "d1", "m1", "e1", "p1", "promotion"),
        Interval("f", "prod", "b" * 64, t, None, "d2", "m2", "e2", "p2", "promotion"),
    ]
    promoted = [Target("c" * 64, "e3", "p3"), Target("b" * 64, "e2", "p2")]
    assert rollback_target(ivs, None, promoted).model_id == "a" * 64  # the previous one
    assert rollback_target(ivs, "ccc", promoted) == Target("c" * 64, "e3", "p3")
    assert rollback_target(ivs, "aaa", promoted).promotion_event_id == "p1"
    with pytest.raises(KeelError, match="never served here and never passed"):
        rollback_target(ivs, "ddd", promoted)
    with pytest.raises(KeelError, match="is the model serving there now"):
        rollback_target(ivs, "bbb", promoted)  # the current one is no rollback
