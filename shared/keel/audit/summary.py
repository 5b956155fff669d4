"""One readable line per event: the key fields an operator scans for. Pure functions."""

from __future__ import annotations

from collections.abc import Callable
from functools import singledispatch
from typing import Any

from keel.events import generated as g


def short(artifact_id: str | None) -> str:
    return "-" if not artifact_id else artifact_id[:12]


@singledispatch
def summarize(event: Any) -> str:
    return type(event).__name__


def _register(cls: type, fn: Callable[[Any], str]) -> None:
    summarize.register(cls)(fn)


_register(
    g.DatasetIngested,
    lambda e: (
        f"{e.family}: dataset {short(e.dataset_id)} from {e.source_name}: "
        f"{e.records_in} in = {e.accepted} accepted + {e.quarantined} quarantined"
    ),
)
_register(
    g.RecordQuarantined,
    lambda e: (
        f"{e.family}: {e.source_name}#{e.record_index} field {e.field or '-'}={e.value} "
        f"broke {e.rule}"
    ),
)
_register(
    g.EventQuarantined,
    lambda e: f"undecodable {e.source_topic}@{e.source_offset}: {e.error}: {e.reason}",
)
_register(
    g.RetrainRequested,
    lambda e: (
        f"{e.family}: retrain requested by {e.envelope.actor} on {len(e.dataset_ids)} "
        f"dataset(s), held out {short(e.eval_dataset_id)}" + (f": {e.reason}" if e.reason else "")
    ),
)
_register(
    g.FeaturesBuilt,
    lambda e: (
        f"{e.family}: feature set {short(e.feature_set_id)} (stats "
        f"{short(e.feature_stats_id)}) from {len(e.dataset_ids)} dataset(s), {e.rows} rows"
    ),
)
_register(
    g.ModelTrained,
    lambda e: (
        f"{e.family}: model {short(e.model_id)} by {e.trainer} on "
        f"{', '.join(short(f) for f in e.feature_set_ids)}"
    ),
)
_register(
    g.ModelEvaluated,
    lambda e: (
        f"{e.family}: model {short(e.model_id)} on {short(e.eval_dataset_id)}: "
        + ", ".join(f"{k}={v:.4f}" for k, v in sorted(e.metrics.items()))
    ),
)
_register(
    g.ModelPromoted,
    lambda e: (
        f"{e.family}: PROMOTED {short(e.model_id)} to {e.env} over "
        f"{short(e.incumbent_model_id)}: {e.reason}"
    ),
)
_register(
    g.PromotionRejected,
    lambda e: (
        f"{e.family}: REJECTED {short(e.model_id)} for {e.env}: failed "
        f"{', '.join(e.failed_gates)}: {e.reason}"
    ),
)
_register(
    g.ModelDeployed,
    lambda e: (
        f"{e.family}: {e.env} now serves {short(e.model_id)} "
        f"({'OVERRIDE' if e.kind == 'override' else e.kind}; was "
        f"{short(e.previous_model_id)}; manifest {short(e.manifest_id)})"
        + (f": {e.reason}" if e.reason else "")
    ),
)
_register(
    g.PromotionPending,
    lambda e: (
        f"{e.family}: PENDING APPROVAL {short(e.model_id)} for {e.env} "
        f"({e.approvals_required} needed): {e.reason}"
    ),
)
_register(
    g.PromotionReviewed,
    lambda e: (
        f"{e.family}: {'APPROVED' if e.verdict == 'approved' else 'DECLINED'} "
        f"{short(e.model_id)} for {e.env} by {e.envelope.actor}: {e.reason}"
    ),
)
_register(
    g.TrainingFailed,
    lambda e: f"{e.family}: TRAINING FAILED at {e.stage} in {e.entry_point}: {e.error}: {e.reason}",
)
_register(
    g.ArtifactRecorded,
    lambda e: (
        f"{e.kind} {short(e.artifact_id)} ({e.size} B) parents "
        f"[{', '.join(short(p) for p in e.parents)}]"
    ),
)
_register(
    g.SchemaReconciled,
    lambda e: (
        f"{e.family}: contracts reconciled at {e.stage} (training "
        f"{e.training_fingerprint}, inference {e.inference_fingerprint})"
    ),
)
_register(
    g.SchemaReconciliationFailed,
    lambda e: (
        f"{e.family}: contracts DIVERGE at {e.stage}: "
        + "; ".join(f"{p.field}: {p.rule}" for p in e.problems)
    ),
)
