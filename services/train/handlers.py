"""train: reacts to FeaturesBuilt; once a retrain request's feature sets are both built, a model
artifact, an eval report, ModelTrained and ModelEvaluated out. Reads the feature sets by ID
from the artifact store (never the feature service's code)."""

from __future__ import annotations

import json
import pickle
from datetime import datetime

import numpy as np

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec, canonical_json
from keel.errors import KeelError
from keel.events import Event
from keel.events import generated as g
from keel.features import FeatureTable
from keel.metrics import evaluate, jsonable, predict
from keel.pipeline import Context
from keel.plugins import UserCodeError, call_user, load_entry_point, plugin_code_version
from keel.service import Producer, make_envelope, store, training_failed
from keel_services.train.domain import calibration_table

SERVICE = Producer("train", __package__ or __name__)  # its identity and code version


def train_model(
    ctx: Context,
    family: str,
    feature_set_id: str,
    at: datetime,
    causation_id: str | None = None,
    reconciliation_event_id: str | None = None,
    publish: bool = True,
    request_id: str | None = None,
) -> g.ModelTrained:
    """The model for the feature set (stored, announced as an artifact). ModelTrained is
    published here, or by the caller (publish=False) once the model is also evaluated."""
    fam = ctx.project.family(family)
    spec = model_spec(ctx, family, feature_set_id)
    cv = spec.code_version
    known = ctx.read.model(spec.id)
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
        ctx.publish([training_failed(ctx, SERVICE, family, err, [feature_set_id], at, request_id)])
        raise
    info = store(ctx, SERVICE, spec, pickle.dumps(model, protocol=5), at)
    event = model_trained(
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
    request_id: str | None = None,
) -> g.ModelEvaluated:
    """The eval report and ModelEvaluated (published with `before`, e.g. the ModelTrained
    that waited for it, so no model is recorded without its evaluation)."""
    fam = ctx.project.family(family)
    cv = plugin_code_version(fam.trainer, SERVICE.package, "keel")
    eval_fs = ctx.read.feature_set(eval_feature_set_id)
    if eval_fs is None:
        raise KeelError(
            f"feature set {eval_feature_set_id[:12]} was never built",
            hint="the feature service records it for the retrain request first",
        )
    spec = ArtifactSpec(
        "eval_report",
        cv,
        {"family": family, "metrics": fam.measured},
        [model_id, eval_feature_set_id],
    )
    for existing in ctx.read.evaluations(model_id):
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
            [
                training_failed(
                    ctx, SERVICE, family, err, [model_id, eval_feature_set_id], at, request_id
                )
            ]
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
    event = model_evaluated(
        envelope=make_envelope(ctx, SERVICE, "ModelEvaluated", model_id, at, request_id),
        family=family,
        model_id=model_id,
        eval_report_id=info.id,
        eval_dataset_id=eval_fs.dataset_ids[0],
        metrics=scores,
    )
    ctx.publish([*(before or []), event])
    return event


def on_step(ctx: Context, event: Event) -> list[Event]:
    """Once both feature sets of a retrain request are built: train, then evaluate on the
    held-out set. Called for the request and for each FeaturesBuilt, since a consumer may see
    them in any order (they live on different topics). Redelivered after a crash, it finds the
    model and its evaluation in the state (same IDs) and records nothing twice."""
    assert isinstance(event, g.FeaturesBuilt | g.RetrainRequested)
    rid = (
        event.envelope.event_id
        if isinstance(event, g.RetrainRequested)
        else event.envelope.causation_id
    )
    req = ctx.read.request(rid) if rid else None
    if rid is None or req is None:
        return []  # features built outside a retrain request: nothing to train
    ready = ctx.read.request_features(rid)
    if "training" not in ready or "held-out" not in ready:
        return []  # the other feature set is still on its way
    train_fs, eval_fs = ready["training"], ready["held-out"]
    at = req.envelope.occurred_at
    verdicts = ctx.read.caused_by(rid, "SchemaReconciled")
    new_model = ctx.read.model(model_spec(ctx, req.family, train_fs.feature_set_id).id) is None
    try:
        trained = train_model(
            ctx,
            req.family,
            train_fs.feature_set_id,
            at,
            train_fs.envelope.event_id,
            verdicts[0].envelope.event_id if verdicts else None,
            publish=False,
            request_id=rid,
        )
        # ModelTrained waits for the evaluation: if user code fails there (TrainingFailed is
        # recorded), no model is left in the registry without its evaluation, and a rerun
        # trains the same model again (same ID, the stored bytes are reused) and evaluates it.
        evaluate_model(
            ctx,
            req.family,
            trained.model_id,
            eval_fs.feature_set_id,
            at,
            [trained] if new_model else [],
            request_id=rid,
        )
    except UserCodeError:
        pass  # recorded as TrainingFailed, caused by the request
    return []


def model_spec(ctx: Context, family: str, feature_set_id: str) -> ArtifactSpec:
    """The model's ID rule: trainer code, its params and the feature set, before training."""
    fam = ctx.project.family(family)
    cv = plugin_code_version(fam.trainer, SERVICE.package, "keel")
    params = {"family": family, "trainer": fam.trainer, "params": dict(fam.trainer_params)}
    return ArtifactSpec("model", cv, params, [feature_set_id])


def load_table(ctx: Context, feature_set_id: str) -> FeatureTable:
    return FeatureTable.from_doc(json.loads(ctx.rt.artifacts.read_bytes(feature_set_id)))


def model_trained(
    envelope: g.Envelope,
    family: str,
    model_id: str,
    feature_set_ids: tuple[str, ...],
    trainer: str,
    params: dict[str, str],
    code_version: str,
    reconciliation_event_id: str | None = None,
) -> g.ModelTrained:
    """The one place a ModelTrained is built: this service's training, and a keel.step's
    model output through the composition root (keel.commands.StepEvents)."""
    return g.ModelTrained(
        envelope=envelope,
        family=family,
        model_id=model_id,
        feature_set_ids=tuple(feature_set_ids),
        trainer=trainer,
        params=params,
        code_version=code_version,
        reconciliation_event_id=reconciliation_event_id,
    )


def model_evaluated(
    envelope: g.Envelope,
    family: str,
    model_id: str,
    eval_report_id: str,
    eval_dataset_id: str,
    metrics: dict[str, float],
) -> g.ModelEvaluated:
    """The one place a ModelEvaluated is built: this service's evaluation, and a keel.step's
    eval_report output through the composition root (keel.commands.StepEvents)."""
    return g.ModelEvaluated(
        envelope=envelope,
        family=family,
        model_id=model_id,
        eval_report_id=eval_report_id,
        eval_dataset_id=eval_dataset_id,
        metrics=metrics,
    )


HANDLERS = {"RetrainRequested": on_step, "FeaturesBuilt": on_step}
