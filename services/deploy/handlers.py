"""deploy: on promotion, write a deployment manifest (an artifact) and record ModelDeployed.
Rollback deploys an earlier model the same way."""

from __future__ import annotations

from datetime import datetime

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec
from keel.contract_gate import check_contracts
from keel.errors import KeelError
from keel.events import Event
from keel.events import generated as g
from keel.pipeline import Context
from keel.registry_events import model_deployed
from keel.service import Producer, make_envelope, rejected_artifact, service_code_version, store
from keel_services.deploy.domain import Target, manifest, rollback_target

SERVICE = Producer("deploy", __package__ or __name__)  # its identity and code version


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
    reason: str | None = None,
) -> g.ModelDeployed:
    current = ctx.read.serving_at(family, env, at)  # what it replaces at its business time
    previous = current.model_id if current else None
    doc = manifest(family, env, model_id, eval_report_id, previous, at, kind)
    parents = [p for p in (model_id, eval_report_id) if p]
    spec = ArtifactSpec("deployment_manifest", service_code_version(SERVICE), doc, parents)
    info = store(ctx, SERVICE, spec, canonical_lines([doc]), at)
    return model_deployed(
        make_envelope(ctx, SERVICE, "ModelDeployed", f"{family}/{env}", at, causation_id),
        family=family,
        env=env,
        model_id=model_id,
        manifest_id=info.id,
        eval_report_id=eval_report_id,
        promotion_event_id=promotion_event_id,
        previous_model_id=previous,
        kind=kind,
        reason=reason,
    )


def on_model_promoted(ctx: Context, event: Event) -> list[Event]:
    assert isinstance(event, g.ModelPromoted)
    eid = event.envelope.event_id
    current = ctx.read.serving_at(event.family, event.env, event.envelope.occurred_at)
    if current is not None and current.model_id == event.model_id:
        return []  # a re-run gate passed for the model already serving: nothing changes
    if ctx.read.caused_ids(eid, "ModelDeployed") or ctx.read.caused_ids(eid, "ArtifactRejected"):
        return []  # acted on before a crash (redelivered): recorded once is enough
    earlier = ctx.read.caused_by(eid, "SchemaReconciled")
    verdict = (
        earlier[0]
        if earlier
        else check_contracts(ctx, event.family, "deploy", event.envelope.occurred_at, SERVICE, eid)
    )
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
            # the person's reason when one asked for it (`keel deploy MODEL --reason`, carried
            # through the gate and any approvals as the decision's note)
            event.note,
        )
    ]


def rollback(
    ctx: Context, family: str, env: str, to: str | None, at: datetime, reason: str | None = None
) -> g.ModelDeployed:
    ctx.project.family(family)
    promoted = [
        Target(d["model_id"], d.get("eval_report_id"), d["event_id"])
        for d in ctx.read.decisions(family)
        if d.get("decision") == "promoted" and d.get("env") == env
    ]
    target = rollback_target(ctx.read.intervals(family, env), to, promoted)
    return _deploy_checked(
        ctx, family, env, target, at, "rollback", target.promotion_event_id, None, reason
    )


def _deploy_checked(
    ctx: Context,
    family: str,
    env: str,
    target: Target,
    at: datetime,
    kind: str,
    promotion_event_id: str | None,
    causation_id: str | None,
    reason: str | None,
) -> g.ModelDeployed:
    """Deploy a person's choice (a rollback, an override) after the checks every deployment
    passes: the model's bytes intact, the family's contracts agreeing."""
    refused = rejected_artifact(ctx, SERVICE, target.model_id, kind, at)
    if refused is not None:
        ctx.publish([refused])
        raise KeelError(
            f"refused to deploy {target.model_id[:16]} to {family}/{env}: {refused.reason}",
            hint="restore the model's bytes from a backup (`keel audit verify` lists every "
            "damaged artifact), or choose another model",
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
        kind,
        promotion_event_id,
        causation_id,
        reason,
    )
    ctx.publish([event])
    return event


def deploy_override(
    ctx: Context, family: str, env: str, model_id: str, at: datetime, decision_id: str, reason: str
) -> g.ModelDeployed:
    """Deploy a model its gate refused (decision `decision_id`), because a person said so."""
    evaluation = ctx.read.latest_eval(model_id)
    target = Target(model_id, evaluation.eval_report_id if evaluation else None, None)
    return _deploy_checked(ctx, family, env, target, at, "override", None, decision_id, reason)


HANDLERS = {"ModelPromoted": on_model_promoted}
