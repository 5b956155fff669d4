"""A retrain is a flow of events: a RetrainRequested, then the feature service's FeaturesBuilt,
then train's ModelTrained and ModelEvaluated, then promote and deploy as usual.

This module records the request (after checking that its datasets are ingested datasets of the
family, so a wrong ID leaves no trace) and, on the embedded bus where the services ran inline,
reads what the flow recorded because of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keel.artifacts.codeversion import code_version
from keel.errors import KeelError
from keel.events import envelope
from keel.events import generated as g
from keel.pipeline import Context

REQUESTER = "cli"  # the identity requests are signed as: a person's command, or a schedule


@dataclass
class RetrainOutcome:
    request_id: str
    model: g.ModelTrained | None = None  # None: not (yet) done, where services run apart
    evaluation: g.ModelEvaluated | None = None
    decisions: list[g.ModelPromoted | g.PromotionRejected | g.PromotionPending] = field(
        default_factory=list
    )


def require_dataset(ctx: Context, family: str, artifact_id: str, role: str) -> None:
    """The ID must name a dataset ingested for this family; say what it names otherwise."""
    ingested = ctx.state.datasets.get(artifact_id)
    if ingested is not None and ingested.family == family:
        return
    what = (
        f"a dataset of family {ingested.family!r}"
        if ingested is not None
        else f"a {ctx.rt.artifacts.info(artifact_id).kind}"
        if ctx.rt.artifacts.exists(artifact_id)
        else "no stored artifact"
    )
    raise KeelError(
        f"the {role} dataset {artifact_id[:16]} is {what}, not a dataset ingested for {family}",
        hint=f"list {family}'s datasets with `keel datasets list --family {family}`",
    )


def request_retrain(
    ctx: Context,
    family: str,
    dataset_ids: list[str],
    eval_dataset_id: str,
    at: datetime,
    reason: str | None = None,
) -> RetrainOutcome:
    ctx.project.family(family)
    for role, ids in (("training", dataset_ids), ("held-out", [eval_dataset_id])):
        for aid in ids:
            require_dataset(ctx, family, aid, role)
    req = g.RetrainRequested(
        envelope=envelope(
            "RetrainRequested",
            subject=family,
            service=REQUESTER,
            code_version=code_version("keel"),
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            occurred_at=at,
        ),
        family=family,
        dataset_ids=tuple(sorted(set(dataset_ids))),
        eval_dataset_id=eval_dataset_id,
        reason=reason,
    )
    before = len(ctx.state.decisions)
    ctx.publish([req])
    rid = req.envelope.event_id
    if not ctx.rt.settings.inline_services:
        return RetrainOutcome(rid)  # the services, each in its own process, take it from here
    return _outcome(ctx, req, before)


def _outcome(ctx: Context, req: g.RetrainRequested, decisions_before: int) -> RetrainOutcome:
    """What the inline services recorded for the request; their refusals raised as errors."""
    state, rid = ctx.state, req.envelope.event_id
    fam = req.family
    for failed in state.caused_by(rid, "SchemaReconciliationFailed"):
        reasons = "; ".join(p.message for p in failed.problems)
        raise KeelError(
            f"{fam}: training and inference contracts diverge, nothing was trained: {reasons}",
            hint=f"fix the contracts, then check with `keel schemas reconcile --family {fam}`",
        )
    for tf in state.caused_by(rid, "TrainingFailed"):
        raise KeelError(
            f"{tf.stage}: {tf.entry_point} raised {tf.error}: {tf.reason}",
            hint="fix the user code (it is recorded as TrainingFailed); rerunning picks up "
            "from this stage",
        )
    training = state.request_features(rid).get("training")
    evaluated = state.caused_by(rid, "ModelEvaluated")
    evaluation = evaluated[-1] if evaluated else None
    if evaluation is None and training is not None:  # done before: the same model, evaluated
        models = [
            m
            for m in state.models.values()
            if m.family == req.family and tuple(m.feature_set_ids) == (training.feature_set_id,)
        ]
        for m in reversed(models):
            evals = [
                e
                for e in state.evaluations.get(m.model_id, [])
                if e.eval_dataset_id == req.eval_dataset_id
            ]
            if evals:
                evaluation = evals[-1]
                break
    if evaluation is None:
        raise KeelError(
            f"the retrain of {req.family} recorded no evaluated model (request {rid})",
            hint="see `keel audit tail --topic training` for what the services recorded",
        )
    return RetrainOutcome(
        rid,
        state.models.get(evaluation.model_id),
        evaluation,
        list(state.decisions[decisions_before:]),
    )
