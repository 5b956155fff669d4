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


Decision = g.ModelPromoted | g.PromotionRejected | g.PromotionPending | g.PromotionReviewed
DECISION_WORD = {
    "ModelPromoted": "promoted",
    "PromotionRejected": "rejected",
    "PromotionPending": "pending",
}


def decision_doc(d: Decision) -> dict[str, Any]:
    """How a registry decision reads: a gate's verdict (promoted, rejected, pending approval)
    or a person's review of a pending one (approved, declined)."""
    base = {
        "family": d.family,
        "model_id": d.model_id,
        "env": d.env,
        "at": d.envelope.occurred_at.isoformat(),
        "actor": d.envelope.actor,
        "event_id": d.envelope.event_id,
    }
    if isinstance(d, g.PromotionReviewed):
        return {
            **base,
            "decision": "approved" if d.verdict == "approved" else "declined",
            "pending_event_id": d.pending_event_id,
            "reason": d.reason,
        }
    doc: dict[str, Any] = {
        **base,
        "decision": DECISION_WORD[d.EVENT_TYPE],
        "eval_report_id": d.eval_report_id,
        "metrics": dict(d.metrics),
        "incumbent_model_id": d.incumbent_model_id,
        "incumbent_metrics": dict(d.incumbent_metrics),
        "gates": [_gate_doc(x) for x in d.gates],
        "reason": d.reason,
        "trigger": d.trigger,
        "note": d.note,
        "policy_version": d.policy_version,
    }
    if isinstance(d, g.ModelPromoted):
        doc["approved_by"] = list(d.approved_by)
        doc["pending_event_id"] = d.pending_event_id
    if isinstance(d, g.PromotionPending):
        doc["approvals_required"] = d.approvals_required
        doc["excluded_approvers"] = list(d.excluded_approvers)
    return doc


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
