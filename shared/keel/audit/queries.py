"""The audit questions, answered from the folded state. Pure: I/O comes in as callables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from keel.audit.folds import AuditState, Interval
from keel.errors import KeelError
from keel.events import generated as g

ReadJson = Callable[[str], Any]


def _interval_doc(iv: Interval) -> dict[str, Any]:
    return {
        "family": iv.family,
        "env": iv.env,
        "model_id": iv.model_id,
        "since": iv.start.isoformat(),
        "until": iv.end.isoformat() if iv.end else None,
        "deployment_event_id": iv.deployment_event_id,
        "manifest_id": iv.manifest_id,
        "eval_report_id": iv.eval_report_id,
        "promotion_event_id": iv.promotion_event_id,
        "kind": iv.kind,
    }


def serving_at(state: AuditState, family: str, env: str, at: datetime) -> dict[str, Any]:
    iv = state.serving_at(family, env, at)
    if iv is None:
        return {
            "at": at.isoformat(),
            "env": env,
            "family": family,
            "serving": None,
            "message": f"nothing was serving in {env} at {at.isoformat()}",
        }
    return {"at": at.isoformat(), "env": env, "family": family, "serving": _interval_doc(iv)}


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


def why_promoted(
    state: AuditState, model_id: str, env: str, over: str | None = None
) -> dict[str, Any]:
    promo = state.promotion_of(model_id, env)
    if promo is None:
        raise KeelError(f"model {model_id[:12]} was never promoted to {env}")
    other = over or promo.incumbent_model_id
    comparison = []
    if other:
        other_eval = state.latest_eval(other)
        theirs = dict(other_eval.metrics) if other_eval else {}
        for m in sorted(set(promo.metrics) | set(theirs)):
            a, b = promo.metrics.get(m), theirs.get(m)
            comparison.append(
                {
                    "metric": m,
                    "model": a,
                    "other": b,
                    "delta": None if a is None or b is None else round(a - b, 6),
                }
            )
    return {"promotion": decision_doc(promo), "over": other, "comparison": comparison}


def _lineage_of_model(state: AuditState, model_id: str) -> dict[str, Any]:
    trained = state.models.get(model_id)
    if trained is None:
        raise KeelError(f"no ModelTrained event for {model_id[:12]}")
    fsets = [state.feature_sets[f] for f in trained.feature_set_ids if f in state.feature_sets]
    datasets = sorted({d for f in fsets for d in f.dataset_ids})
    ev = state.latest_eval(model_id)
    return {"trained": trained, "feature_sets": fsets, "datasets": datasets, "eval": ev}


def diff_models(
    state: AuditState, a: str, b: str, read_json: ReadJson, top: int = 5
) -> dict[str, Any]:
    """What differs between two models: data, features, code, params, metrics."""
    la, lb = _lineage_of_model(state, a), _lineage_of_model(state, b)
    ta, tb = la["trained"], lb["trained"]
    da, db = set(la["datasets"]), set(lb["datasets"])
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "datasets": {"only_a": sorted(da - db), "only_b": sorted(db - da), "shared": len(da & db)},
        "feature_sets": {"a": list(ta.feature_set_ids), "b": list(tb.feature_set_ids)},
        "code_version": {
            "a": ta.code_version,
            "b": tb.code_version,
            "same": ta.code_version == tb.code_version,
        },
        "trainer": {"a": ta.trainer, "b": tb.trainer},
        "params": {
            k: {"a": ta.params.get(k), "b": tb.params.get(k)}
            for k in sorted(set(ta.params) | set(tb.params))
            if ta.params.get(k) != tb.params.get(k)
        },
    }
    ea, eb = la["eval"], lb["eval"]
    ma, mb = (dict(ea.metrics) if ea else {}), (dict(eb.metrics) if eb else {})
    out["metrics"] = [
        {
            "metric": m,
            "a": ma.get(m),
            "b": mb.get(m),
            "delta": None if m not in ma or m not in mb else round(mb[m] - ma[m], 6),
        }
        for m in sorted(set(ma) | set(mb))
    ]
    if la["feature_sets"] and lb["feature_sets"]:
        sa = read_json(la["feature_sets"][0].feature_stats_id)
        sb = read_json(lb["feature_sets"][0].feature_stats_id)
        out["feature_shift"] = feature_shift(sa, sb)[:top]
        out["label_shift"] = {"a": sa.get("label"), "b": sb.get("label")}
    return out


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
