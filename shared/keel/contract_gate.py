"""The reconciliation gate, shared by train (before training) and deploy (before every deploy):
check the family's training and inference contracts and record the verdict as an event.

The one module that builds SchemaReconciled and SchemaReconciliationFailed. No single service
owns the gate: the feature service runs it before a retrain (stage "train") and deploy before
every deployment (stage "deploy"), and each records the verdict as itself (`service`: its
identity and its code version, which covers this library module too), decision 0025."""

from __future__ import annotations

from datetime import datetime

from keel.events import generated as g
from keel.pipeline import Context
from keel.reconcile import reconcile
from keel.service import Producer, make_envelope


def check_contracts(
    ctx: Context,
    family: str,
    stage: str,
    at: datetime,
    service: Producer,
    causation_id: str | None = None,
) -> g.SchemaReconciled | g.SchemaReconciliationFailed:
    """Returns the recorded verdict. A failure stops the family's pipeline at this stage."""
    training, inference = ctx.project.contracts(family)
    problems = reconcile(training.schema, inference.schema)
    subject = f"{family}/contracts"
    event: g.SchemaReconciled | g.SchemaReconciliationFailed
    if problems:
        event = g.SchemaReconciliationFailed(
            envelope=make_envelope(
                ctx, service, "SchemaReconciliationFailed", subject, at, causation_id
            ),
            family=family,
            training_fingerprint=training.fingerprint,
            inference_fingerprint=inference.fingerprint,
            stage=stage,
            problems=tuple(
                g.ReconciliationProblem(
                    field=p.field,
                    training_type=p.training_type,
                    inference_type=p.inference_type,
                    rule=p.rule,
                    message=p.message,
                )
                for p in problems
            ),
        )
    else:
        event = g.SchemaReconciled(
            envelope=make_envelope(ctx, service, "SchemaReconciled", subject, at, causation_id),
            family=family,
            training_fingerprint=training.fingerprint,
            inference_fingerprint=inference.fingerprint,
            stage=stage,
        )
    ctx.publish([event])
    return event
