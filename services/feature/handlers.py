"""feature: dataset IDs in; a feature-set artifact and a feature-stats artifact out."""

from __future__ import annotations

import json
from datetime import datetime

import orjson

from keel.artifacts.ids import ArtifactSpec
from keel.contracts import serving_inputs
from keel.events import generated as g
from keel.pipeline import Context
from keel.plugins import UserCodeError, call_user, load_entry_point, plugin_code_version
from services.common import make_envelope, store, training_failed
from services.feature.domain import FeatureTable, build_table, table_stats
from services.ingest.domain import canonical_lines

SERVICE = "feature"


def load_rows(ctx: Context, dataset_ids: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for ds in dataset_ids:
        data = ctx.rt.artifacts.read_bytes(ds)  # verified against its digest
        rows.extend(orjson.loads(line) for line in data.splitlines() if line)
    return rows


def load_table(ctx: Context, feature_set_id: str) -> FeatureTable:
    return FeatureTable.from_doc(json.loads(ctx.rt.artifacts.read_bytes(feature_set_id)))


def build_features(
    ctx: Context, family: str, dataset_ids: list[str], at: datetime
) -> g.FeaturesBuilt:
    fam = ctx.project.family(family)
    training, inference = ctx.project.contracts(family)
    cv = plugin_code_version(fam.transform, f"services.{SERVICE}", "keel")
    params = {"family": family, "transform": fam.transform}
    fs_spec = ArtifactSpec("feature_set", cv, params, dataset_ids)
    known = ctx.state.feature_sets.get(fs_spec.id)
    if known is not None:  # same datasets, same code: already built, nothing new to say
        return known
    transform = load_entry_point(fam.transform)
    label = training.labels[0] if training.labels else None
    try:
        table = call_user(
            fam.transform,
            "features",
            build_table,
            load_rows(ctx, sorted(set(dataset_ids))),
            transform,
            label,
            serving_inputs(training, inference),
        )
    except UserCodeError as err:
        ctx.publish([training_failed(ctx, SERVICE, family, err, sorted(set(dataset_ids)), at)])
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
    event = g.FeaturesBuilt(
        envelope=make_envelope(ctx, SERVICE, "FeaturesBuilt", fs.id, at),
        family=family,
        dataset_ids=tuple(sorted(set(dataset_ids))),
        feature_set_id=fs.id,
        feature_stats_id=stats.id,
        transform=fam.transform,
        code_version=cv,
        rows=len(table.rows),
    )
    ctx.publish([event])
    return event
