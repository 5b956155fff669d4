"""The one place a ModelDeployed and a PromotionRejected are built (decision 0025).

Two services record each: deploy and promote for the pipeline's own decisions, the MLflow
bridge for a move MLflow made (an alias set or deleted, judged by the family's gate). The
bridge may not import deploy or promote, so the shape lives here and each producer hands in
its own envelope (its identity, code version and causation), as keel.service's builders do
for ArtifactRejected and TrainingFailed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from keel.events import Envelope
from keel.events.generated import GateResult, ModelDeployed, PromotionRejected


def model_deployed(
    envelope: Envelope,
    *,
    family: str,
    env: str,
    model_id: str,
    manifest_id: str,
    kind: str,
    previous_model_id: str | None,
    eval_report_id: str | None = None,
    promotion_event_id: str | None = None,
    reason: str | None = None,
) -> ModelDeployed:
    """`model_id` serves `env` from now on (business time: the envelope's), as the deployment
    manifest `manifest_id` states; `kind` says how it got there (promotion, rollback, manual,
    and the bridge's alias, withdrawn, import)."""
    return ModelDeployed(
        envelope=envelope,
        family=family,
        env=env,
        model_id=model_id,
        manifest_id=manifest_id,
        eval_report_id=eval_report_id,
        promotion_event_id=promotion_event_id,
        previous_model_id=previous_model_id,
        kind=kind,
        reason=reason,
    )


def promotion_rejected(
    envelope: Envelope,
    *,
    family: str,
    model_id: str,
    env: str,
    eval_report_id: str,
    metrics: Mapping[str, float],
    gates: Iterable[GateResult],
    failed_gates: Iterable[str],
    reason: str,
    incumbent_model_id: str | None = None,
    incumbent_metrics: Mapping[str, float] | None = None,
    trigger: str = "pipeline",
    note: str | None = None,
    policy_version: str | None = None,
) -> PromotionRejected:
    """`model_id` failed `env`'s promotion gate: every gate's result, the failed ones by name,
    and what it was measured against (the incumbent); `trigger` says who asked (the pipeline,
    a person, or mlflow-alias for a move MLflow had already made)."""
    return PromotionRejected(
        envelope=envelope,
        family=family,
        model_id=model_id,
        env=env,
        eval_report_id=eval_report_id,
        metrics=dict(metrics),
        gates=tuple(gates),
        failed_gates=tuple(failed_gates),
        incumbent_model_id=incumbent_model_id,
        incumbent_metrics=dict(incumbent_metrics or {}),
        reason=reason,
        trigger=trigger,
        note=note,
        policy_version=policy_version,
    )
