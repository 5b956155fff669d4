"""deploy: on promotion, write a deployment manifest (an artifact) and record ModelDeployed.
Rollback deploys an earlier model the same way."""

from __future__ import annotations

from datetime import datetime

from keel.artifacts.ids import ArtifactSpec
from keel.errors import KeelError
from keel.events import Event
from keel.events import generated as g
from keel.pipeline import Context
from services.common import make_envelope, rejected_artifact, service_code_version, store
from services.contracts import check_contracts
from services.deploy.domain import manifest, rollback_target
from services.ingest.domain import canonical_lines

SERVICE = "deploy"


def deploy(
    ctx: Context,
    family: str,
    env: str,
    model_id: str,
    eval_report_id: str | None,
    at: datetime,
    kind: str,
    promotion_event_id: str | None,
    causation_id: str | None,
) -> g.ModelDeployed:
    current = ctx.state.serving_now(family, env)
    previous = current.model_id if current else None
    doc = manifest(family, env, model_id, eval_report_id, previous, at, kind)
    parents = [p for p in (model_id, eval_report_id) if p]
    spec = ArtifactSpec("deployment_manifest", service_code_version(SERVICE), doc, parents)
    info = store(ctx, SERVICE, spec, canonical_lines([doc]), at)
    return g.ModelDeployed(
        envelope=make_envelope(ctx, SERVICE, "ModelDeployed", f"{family}/{env}", at, causation_id),
        family=family,
        env=env,
        model_id=model_id,
        manifest_id=info.id,
        eval_report_id=eval_report_id,
        promotion_event_id=promotion_event_id,
        previous_model_id=previous,
        kind=kind,
    )


def on_model_promoted(ctx: Context, event: Event) -> list[Event]:
    assert isinstance(event, g.ModelPromoted)
    eid = event.envelope.event_id
    verdict = check_contracts(ctx, event.family, "deploy", event.envelope.occurred_at, SERVICE, eid)
    if isinstance(verdict, g.SchemaReconciliationFailed):
        return []  # the failure is recorded; nothing is deployed until the contracts are fixed
    refused = rejected_artifact(ctx, SERVICE, event.model_id, "deploy", event.envelope.occurred_at)
    if refused is not None:
        return [refused]  # recorded; the environment keeps serving what it served
    return [
        deploy(
            ctx,
            event.family,
            event.env,
            event.model_id,
            event.eval_report_id,
            event.envelope.occurred_at,
            "promotion",
            eid,
            eid,
        )
    ]


def rollback(ctx: Context, family: str, env: str, to: str | None, at: datetime) -> g.ModelDeployed:
    ctx.project.family(family)
    target = rollback_target(ctx.state.serving.get((family, env), []), to)
    refused = rejected_artifact(ctx, SERVICE, target.model_id, "rollback", at)
    if refused is not None:
        ctx.publish([refused])
        raise KeelError(
            f"refused to roll {family}/{env} back to {target.model_id[:16]}: {refused.reason}",
            hint="restore the model's bytes from a backup (`keel audit verify` lists every "
            "damaged artifact), or roll back to another model",
        )
    verdict = check_contracts(ctx, family, "deploy", at, SERVICE)
    if isinstance(verdict, g.SchemaReconciliationFailed):
        raise KeelError(
            f"{family}: contracts diverge, nothing was deployed: "
            + "; ".join(p.message for p in verdict.problems),
            hint=f"fix the contracts, then check with `keel schemas reconcile --family {family}`",
        )
    event = deploy(
        ctx,
        family,
        env,
        target.model_id,
        target.eval_report_id,
        at,
        "rollback",
        target.promotion_event_id,
        None,
    )
    ctx.publish([event])
    return event


HANDLERS = {"ModelPromoted": on_model_promoted}
