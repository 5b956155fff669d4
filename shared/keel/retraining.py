"""A retrain is a flow of events: a RetrainRequested, then the feature service's FeaturesBuilt,
then train's ModelTrained and ModelEvaluated, then promote and deploy as usual.

This module checks a request's datasets and, on the embedded bus where the services ran inline,
reads what the flow recorded because of it. The request itself is a command the application
records (its retrain module), never the library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.audit import keys
from keel.errors import KeelError
from keel.events import generated as g
from keel.pipeline import Context


@dataclass
class RetrainOutcome:
    request_id: str
    model: g.ModelTrained | None = None  # None: not (yet) done, where services run apart
    evaluation: g.ModelEvaluated | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)  # decision documents


def require_dataset(ctx: Context, family: str, artifact_id: str, role: str) -> None:
    """The ID must name a dataset ingested for this family; say what it names otherwise."""
    ingested = ctx.read.dataset(artifact_id)
    if ingested is not None and ingested["family"] == family:
        return
    what = (
        f"a dataset of family {ingested['family']!r}"
        if ingested is not None
        else f"a {ctx.rt.artifacts.info(artifact_id).kind}"
        if ctx.rt.artifacts.exists(artifact_id)
        else "no stored artifact"
    )
    raise KeelError(
        f"the {role} dataset {artifact_id[:16]} is {what}, not a dataset ingested for {family}",
        hint=f"list {family}'s datasets with `keel datasets list --family {family}`",
    )


def outcome(ctx: Context, req: g.RetrainRequested) -> RetrainOutcome:
    """What the inline services recorded for the request; their refusals raised as errors."""
    read, rid, fam = ctx.read, req.envelope.event_id, req.family
    for failed in read.caused_by(rid, "SchemaReconciliationFailed"):
        reasons = "; ".join(p.message for p in failed.problems)
        raise KeelError(
            f"{fam}: training and inference contracts diverge, nothing was trained: {reasons}",
            hint=f"fix the contracts, then check with `keel schemas reconcile --family {fam}`",
        )
    for tf in read.caused_by(rid, "TrainingFailed"):
        raise KeelError(
            f"{tf.stage}: {tf.entry_point} raised {tf.error}: {tf.reason}",
            hint="fix the user code (it is recorded as TrainingFailed); rerunning picks up "
            "from this stage",
        )
    evaluated = read.caused_by(rid, "ModelEvaluated")
    evaluation = evaluated[-1] if evaluated else _earlier_evaluation(ctx, req)
    if evaluation is None:
        raise KeelError(
            f"the retrain of {fam} recorded no evaluated model (request {rid})",
            hint="see `keel audit tail --topic training` for what the services recorded",
        )
    decisions = _decisions_after(ctx, evaluation.envelope.event_id) if evaluated else []
    return RetrainOutcome(rid, read.model(evaluation.model_id), evaluation, decisions)


def _earlier_evaluation(ctx: Context, req: g.RetrainRequested) -> g.ModelEvaluated | None:
    """The same retrain done before: its model (a child of the training feature set in the
    lineage) evaluated on the same held-out dataset. Nothing new was recorded this time."""
    training = ctx.read.request_features(req.envelope.event_id).get("training")
    if training is None:
        return None
    children = ctx.rt.views.index_range(keys.children(training.feature_set_id), limit=1000)
    for model_id, _ in reversed(children):
        trained = ctx.read.model(model_id)
        if trained is None or trained.family != req.family:
            continue
        evals = [
            e for e in ctx.read.evaluations(model_id) if e.eval_dataset_id == req.eval_dataset_id
        ]
        if evals:
            return evals[-1]
    return None


DECISIONS = ("ModelPromoted", "PromotionRejected", "PromotionPending")


def _decisions_after(ctx: Context, evaluation_id: str) -> list[dict[str, Any]]:
    """The registry decisions that followed from the evaluation, through the deployments they
    led to (staging's promotion deployed, then prod's gate), in order."""
    out: list[dict[str, Any]] = []
    frontier = [evaluation_id]
    for _ in range(20):  # environments are few; bounded against a cycle in bad data
        nxt = []
        for cause in frontier:
            for kind, eid in ctx.read.caused(cause):
                if kind in DECISIONS:
                    doc = ctx.read.decision(eid)
                    if doc is not None:
                        out.append(doc)
                    nxt.append(eid)
                elif kind == "ModelDeployed":
                    nxt.append(eid)
        if not nxt:
            break
        frontier = nxt
    return out
