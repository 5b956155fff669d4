"""Shared pieces of the audit answers: how a decision reads, how feature distributions moved."""

from __future__ import annotations

from typing import Any

from keel.events import generated as g


def _gate_doc(gate: g.GateResult) -> dict[str, Any]:
    return {
        "name": gate.name,
        "metric": gate.metric,
        "op": gate.op,
        "threshold": gate.threshold,
        "value": gate.value,
        "passed": gate.passed,
        "margin": gate.margin,
    }


def decision_doc(d: g.ModelPromoted | g.PromotionRejected) -> dict[str, Any]:
    return {
        "decision": "promoted" if isinstance(d, g.ModelPromoted) else "rejected",
        "family": d.family,
        "model_id": d.model_id,
        "env": d.env,
        "at": d.envelope.occurred_at.isoformat(),
        "actor": d.envelope.actor,
        "event_id": d.envelope.event_id,
        "eval_report_id": d.eval_report_id,
        "metrics": dict(d.metrics),
        "incumbent_model_id": d.incumbent_model_id,
        "incumbent_metrics": dict(d.incumbent_metrics),
        "gates": [_gate_doc(x) for x in d.gates],
        "reason": d.reason,
    }


def feature_shift(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Features ranked by how far their mean moved, in units of A's standard deviation."""
    rows = []
    for name in sorted(set(a["features"]) & set(b["features"])):
        fa, fb = a["features"][name], b["features"][name]
        if "mean" not in fa or "mean" not in fb:
            continue
        scale = fa["std"] or 1.0
        rows.append(
            {
                "feature": name,
                "mean_a": fa["mean"],
                "mean_b": fb["mean"],
                "shift_sd": round((fb["mean"] - fa["mean"]) / scale, 4),
            }
        )
    rows.sort(key=lambda r: -abs(r["shift_sd"]))
    return rows
