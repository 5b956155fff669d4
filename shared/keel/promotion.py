"""The promotion gate, pure: candidate metrics vs absolute thresholds and vs the incumbent.
The promote service decides with it (keel_services.promote) and the MLflow bridge judges an
alias move MLflow made by it (keel_services.mlflow_bridge.gate): one rule, in the library."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keel.events.generated import GateResult
from keel.project import Policy

Direction = Callable[[str], bool]  # metric name -> higher is better (keel.metrics)


@dataclass(frozen=True)
class Incumbent:
    model_id: str
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Serving:
    """What served the environment at the decision's business time, in words: a decision is
    judged against that (a backdated one against what served then, not what serves today).
    `where`: e.g. "prod at 2025-01-31T00:00Z"; `itself`: the candidate was the one serving."""

    where: str
    itself: bool = False


@dataclass(frozen=True)
class Decision:
    promoted: bool
    gates: tuple[GateResult, ...]
    reason: str

    @property
    def failed(self) -> list[str]:
        return [g.name for g in self.gates if not g.passed]


def _compare(higher: bool, value: float, required: float) -> tuple[bool, float]:
    """(passed, margin): margin > 0 means better than required, in the metric's direction."""
    margin = value - required if higher else required - value
    return margin >= 0, round(margin, 6)


def _word(higher: bool) -> str:
    return ">=" if higher else "<="


def decide(
    metrics: Mapping[str, float],
    incumbent: Incumbent | None,
    policy: Policy,
    higher_is_better: Direction,
    serving: Serving | None = None,
) -> Decision:
    gates: list[GateResult] = []
    notes: list[str] = []
    if policy.gates == "none":
        return Decision(True, (), 'promoted without gates (the policy says gates = "none")')
    for metric, threshold in sorted(policy.thresholds.items()):
        value = metrics.get(metric)
        up = higher_is_better(metric)
        passed, margin = _compare(up, value, threshold) if value is not None else (False, None)
        gates.append(
            GateResult(
                name=f"{metric}_threshold",
                metric=metric,
                op=_word(up),
                threshold=threshold,
                value=value,
                passed=passed,
                margin=margin,
            )
        )
        if value is None or margin is None:
            notes.append(f"{metric} was not measured")
        elif passed:
            notes.append(f"{metric} {value:.4f} {_word(up)} {threshold} ({margin:+.4f})")
        else:
            notes.append(f"{metric} {value:.4f} misses {_word(up)} {threshold} by {-margin:.4f}")
    beat = policy.beat_incumbent
    if beat is not None:
        gate, note = _beat_gate(
            beat.metric,
            higher_is_better(beat.metric),
            beat.by,
            metrics.get(beat.metric),
            incumbent,
            serving,
        )
        gates.append(gate)
        notes.append(note)
    promoted = all(g.passed for g in gates)
    head = "promoted: " if promoted else "rejected: "
    return Decision(promoted, tuple(gates), head + "; ".join(notes))


def _beat_gate(
    m: str,
    up: bool,
    by: float,
    value: float | None,
    incumbent: Incumbent | None,
    serving: Serving | None = None,
) -> tuple[GateResult, str]:
    """The "beat the incumbent by at least `by` on metric `m`" gate, and its sentence; `up`:
    higher is better. A tie with the incumbent is said to be one. With `serving`, the sentence
    says which time the incumbent was read at (or that nothing served then)."""
    inc_value = incumbent.metrics.get(m) if incumbent else None
    margin: float | None = None
    who = ""
    if incumbent is not None:
        who = incumbent.model_id[:12] + (f" (serving {serving.where})" if serving else "")
    if incumbent is None or inc_value is None:
        passed = value is not None
        if incumbent is not None:
            note = f"incumbent {who} has no {m}"
        elif serving is None:
            note = "no incumbent to beat"
        elif serving.itself:
            note = f"no other incumbent to beat: it was already serving {serving.where}"
        else:
            note = f"no incumbent to beat: no model was serving {serving.where}"
    elif value is None:
        passed, note = False, f"{m} was not measured"
    else:
        required = inc_value + by if up else inc_value - by
        passed, margin = _compare(up, value, required)
        better = value - inc_value if up else inc_value - value  # > 0: better, in m's direction
        if value == inc_value:
            note = f"{m} {value:.4f} ties incumbent {who}" + (
                f", needed better by {by:+.4f}" if not passed else ""
            )
        elif passed:
            note = (
                f"{m} {value:.4f} beats incumbent {who} ({inc_value:.4f}) "
                f"by {better:+.4f}, needed {by:+.4f}"
            )
        else:
            note = (
                f"{m} {value:.4f} does not beat incumbent {who} ({inc_value:.4f}) "
                f"by {by:+.4f}: short by {-margin:.4f}"
            )
    gate = GateResult(
        name="beats_incumbent",
        metric=m,
        op="beats_incumbent_by",
        threshold=by,
        value=value,
        passed=passed,
        margin=margin,
    )
    return gate, note
