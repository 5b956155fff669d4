"""train: feature-set IDs in (never paths); a model artifact, an eval report and events out."""

from __future__ import annotations

import pickle
from datetime import datetime

import numpy as np

from keel.artifacts.ids import ArtifactSpec, canonical_json
from keel.errors import KeelError
from keel.events import generated as g
from keel.metrics import evaluate, jsonable, predict
from keel.pipeline import Context
from keel.plugins import UserCodeError, call_user, load_entry_point, plugin_code_version
from services.common import make_envelope, store, training_failed
from services.contracts import check_contracts
from services.feature.handlers import build_features, load_table
from services.ingest.domain import canonical_lines
from services.train.domain import calibration_table

SERVICE = "train"


def train_model(
    ctx: Context,
    family: str,
    feature_set_id: str,
    at: datetime,
    causation_id: str | None = None,
    reconciliation_event_id: str | None = None,
    publish: bool = True,
) -> g.ModelTrained:
    """The model for the feature set (stored, announced as an artifact). ModelTrained is
    published here, or by the caller (publish=False) once the model is also evaluated."""
    fam = ctx.project.family(family)
    spec = model_spec(ctx, family, feature_set_id)
    cv = spec.code_version
    known = ctx.state.models.get(spec.id)
    if known is not None:
        return known
    table = load_table(ctx, feature_set_id)
    if not table.rows:
        raise KeelError(f"feature set {feature_set_id[:12]} has no rows to train on")
    trainer = load_entry_point(fam.trainer)
    try:
        model = call_user(
            fam.trainer,
            "train",
            trainer,
            np.asarray(table.rows, dtype=float),
            np.asarray(table.y),
            dict(fam.trainer_params),
        )
    except UserCodeError as err:
        ctx.publish([training_failed(ctx, SERVICE, family, err, [feature_set_id], at)])
        raise
    info = store(ctx, SERVICE, spec, pickle.dumps(model, protocol=5), at)
    event = g.ModelTrained(
        envelope=make_envelope(ctx, SERVICE, "ModelTrained", info.id, at, causation_id),
        family=family,
        model_id=info.id,
        feature_set_ids=(feature_set_id,),
        trainer=fam.trainer,
        params={k: canonical_json(v) for k, v in sorted(fam.trainer_params.items())},
        code_version=cv,
        reconciliation_event_id=reconciliation_event_id,
    )
    if publish:
        ctx.publish([event])
    return event


def evaluate_model(
    ctx: Context,
    family: str,
    model_id: str,
    eval_feature_set_id: str,
    at: datetime,
    before: list[g.ModelTrained] | None = None,
) -> g.ModelEvaluated:
    """The eval report and ModelEvaluated (published with `before`, e.g. the ModelTrained
    that waited for it, so no model is recorded without its evaluation)."""
    fam = ctx.project.family(family)
    cv = plugin_code_version(fam.trainer, f"services.{SERVICE}", "keel")
    eval_fs = ctx.state.feature_sets[eval_feature_set_id]
    spec = ArtifactSpec(
        "eval_report",
        cv,
        {"family": family, "metrics": fam.measured},
        [model_id, eval_feature_set_id],
    )
    for existing in ctx.state.evaluations.get(model_id, []):
        if existing.eval_report_id == spec.id:
            return existing
    model = pickle.loads(ctx.rt.artifacts.read_bytes(model_id))  # verified bytes from our store
    table = load_table(ctx, eval_feature_set_id)
    y = np.asarray(table.y)
    # Predictions through the task's protocol: labels of any type, every class (never a
    # "probability of class 1 >= 0.5" on a multiclass model).
    try:
        preds = call_user(
            fam.predictor or f"{fam.trainer} (the model's predict)",
            "evaluate",
            predict,
            model,
            np.asarray(table.rows, dtype=float),
            fam.task,
            fam.predictor,
        )
        scores = call_user(
            ", ".join(fam.measured), "evaluate", evaluate, fam.task, fam.measured, preds, y
        )
    except UserCodeError as err:
        ctx.publish(
            [training_failed(ctx, SERVICE, family, err, [model_id, eval_feature_set_id], at)]
        )
        raise
    report = {
        "model_id": model_id,
        "eval_feature_set_id": eval_feature_set_id,
        "eval_dataset_ids": list(eval_fs.dataset_ids),
        "task": fam.task,
        "rows": len(y),
        "metrics": scores,
        "classes": [jsonable(c) for c in preds.classes],
        "calibration": (
            calibration_table(np.asarray(y == preds.classes[1], dtype=float), preds.positive())
            if fam.task == "binary"
            else []
        ),
    }
    info = store(ctx, SERVICE, spec, canonical_lines([report]), at)
    event = g.ModelEvaluated(
        envelope=make_envelope(ctx, SERVICE, "ModelEvaluated", model_id, at),
        family=family,
        model_id=model_id,
        eval_report_id=info.id,
        eval_dataset_id=eval_fs.dataset_ids[0],
        metrics=scores,
    )
    ctx.publish([*(before or []), event])
    return event


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
        hint=f"list {family}'s datasets with `keel audit tail --topic datasets`",
    )


def retrain(
    ctx: Context, family: str, dataset_ids: list[str], eval_dataset_id: str, at: datetime
) -> tuple[g.ModelTrained, g.ModelEvaluated]:
    """The retrain command: features for the training and held-out datasets, a model, its eval.
    Promotion and deployment follow from the ModelEvaluated event. Contracts that diverge stop
    it before any work (SchemaReconciliationFailed is recorded, nothing is trained)."""
    for role, ids in (("training", dataset_ids), ("held-out", [eval_dataset_id])):
        for aid in ids:  # before anything is recorded: a wrong ID leaves no trace
            require_dataset(ctx, family, aid, role)
    verdict = check_contracts(ctx, family, "train", at, SERVICE)
    if isinstance(verdict, g.SchemaReconciliationFailed):
        reasons = "; ".join(p.message for p in verdict.problems)
        raise KeelError(
            f"{family}: training and inference contracts diverge, nothing was trained: {reasons}",
            hint=f"fix the contracts, then check with `keel schemas reconcile --family {family}`",
        )
    train_fs = build_features(ctx, family, dataset_ids, at)
    eval_fs = build_features(ctx, family, [eval_dataset_id], at)
    new_model = ctx.state.models.get(model_spec(ctx, family, train_fs.feature_set_id).id) is None
    trained = train_model(
        ctx,
        family,
        train_fs.feature_set_id,
        at,
        train_fs.envelope.event_id,
        verdict.envelope.event_id,
        publish=False,
    )
    # ModelTrained waits for the evaluation: if user code fails there (TrainingFailed is
    # recorded), no model is left in the registry without its evaluation, and a rerun trains
    # the same model again (same ID, the stored bytes are reused) and evaluates it.
    evaluated = evaluate_model(
        ctx, family, trained.model_id, eval_fs.feature_set_id, at, [trained] if new_model else []
    )
    return trained, evaluated


def model_spec(ctx: Context, family: str, feature_set_id: str) -> ArtifactSpec:
    """The model's ID rule: trainer code, its params and the feature set, before training."""
    fam = ctx.project.family(family)
    cv = plugin_code_version(fam.trainer, f"services.{SERVICE}", "keel")
    params = {"family": family, "trainer": fam.trainer, "params": dict(fam.trainer_params)}
    return ArtifactSpec("model", cv, params, [feature_set_id])
