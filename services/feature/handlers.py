"""feature: reacts to RetrainRequested; dataset IDs in, feature-set and feature-stats artifacts
out, one FeaturesBuilt per role (training, held-out) caused by the request."""

from __future__ import annotations

from datetime import datetime

import orjson

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec
from keel.contract_gate import check_contracts
from keel.contracts import serving_inputs
from keel.events import Event
from keel.events import generated as g
from keel.pipeline import Context
from keel.plugins import UserCodeError, call_user, load_entry_point, plugin_code_version
from keel.service import Producer, make_envelope, store, training_failed
from keel_services.feature.domain import build_table, table_stats

SERVICE = Producer("feature", __package__ or __name__)  # its identity and code version


def on_retrain_requested(ctx: Context, req: Event) -> list[Event]:
    """Check the contracts (a divergence stops the retrain before any work), then build the
    training and held-out feature sets. Redelivered after a crash, it repeats only what the
    state does not show as done for this request."""
    assert isinstance(req, g.RetrainRequested)
    rid, at = req.envelope.event_id, req.envelope.occurred_at
    verdicts = [
        *ctx.read.caused_by(rid, "SchemaReconciled"),
        *ctx.read.caused_by(rid, "SchemaReconciliationFailed"),
    ]
    verdict = (
        verdicts[0] if verdicts else check_contracts(ctx, req.family, "train", at, SERVICE, rid)
    )
    if isinstance(verdict, g.SchemaReconciliationFailed):
        return []
    done = ctx.read.request_features(rid)
    for role, ids in (("training", req.dataset_ids), ("held-out", (req.eval_dataset_id,))):
        if role in done:
            continue
        try:
            build_features(ctx, req.family, list(ids), at, rid)
        except UserCodeError:
            return []  # recorded as TrainingFailed (caused by the request); nothing else to do
    return []


def load_rows(ctx: Context, dataset_ids: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for ds in dataset_ids:
        data = ctx.rt.artifacts.read_bytes(ds)  # verified against its digest
        rows.extend(orjson.loads(line) for line in data.splitlines() if line)
    return rows


def build_features(
    ctx: Context, family: str, dataset_ids: list[str], at: datetime, request_id: str
) -> g.FeaturesBuilt:
    """The feature set of these datasets under the family's transform, announced for the
    request (a feature set built before is announced again, not rebuilt)."""
    fam = ctx.project.family(family)
    training, inference = ctx.project.contracts(family)
    cv = plugin_code_version(fam.transform, SERVICE.package, "keel")
    params = {"family": family, "transform": fam.transform}
    ids = sorted(set(dataset_ids))
    fs_spec = ArtifactSpec("feature_set", cv, params, ids)
    known = ctx.read.feature_set(fs_spec.id)
    if known is not None:  # same datasets, same code: built already; say so for this request
        event = features_built(
            envelope=make_envelope(
                ctx, SERVICE, "FeaturesBuilt", known.feature_set_id, at, request_id
            ),
            family=family,
            dataset_ids=known.dataset_ids,
            feature_set_id=known.feature_set_id,
            feature_stats_id=known.feature_stats_id,
            transform=known.transform,
            code_version=known.code_version,
            rows=known.rows,
        )
        ctx.publish([event])
        return event
    transform = load_entry_point(fam.transform)
    label = training.labels[0] if training.labels else None
    try:
        table = call_user(
            fam.transform,
            "features",
            build_table,
            load_rows(ctx, ids),
            transform,
            label,
            serving_inputs(training, inference),
        )
    except UserCodeError as err:
        ctx.publish([training_failed(ctx, SERVICE, family, err, ids, at, request_id)])
        raise
    fs = store(ctx, SERVICE, fs_spec, canonical_lines([table.as_doc()]), at)
    stats_spec = ArtifactSpec("feature_stats", cv, params, [fs.id])
    stats = store(
        ctx,
        SERVICE,
        stats_spec,
        canonical_lines([table_stats(table, classes=fam.task != "regression")]),
        at,
    )
    event = features_built(
        envelope=make_envelope(ctx, SERVICE, "FeaturesBuilt", fs.id, at, request_id),
        family=family,
        dataset_ids=tuple(ids),
        feature_set_id=fs.id,
        feature_stats_id=stats.id,
        transform=fam.transform,
        code_version=cv,
        rows=len(table.rows),
    )
    ctx.publish([event])
    return event


def features_built(
    envelope: g.Envelope,
    family: str,
    dataset_ids: tuple[str, ...],
    feature_set_id: str,
    feature_stats_id: str,
    transform: str,
    code_version: str,
    rows: int,
) -> g.FeaturesBuilt:
    """The one place a FeaturesBuilt is built: this service's handler, and a keel.step's
    feature_set output through the composition root (keel.commands.StepEvents)."""
    return g.FeaturesBuilt(
        envelope=envelope,
        family=family,
        dataset_ids=tuple(dataset_ids),
        feature_set_id=feature_set_id,
        feature_stats_id=feature_stats_id,
        transform=transform,
        code_version=code_version,
        rows=rows,
    )


HANDLERS = {"RetrainRequested": on_retrain_requested}
