"""Commands people run (CLI, HTTP, the Python client) that act through the services' code.

The composition root is the one place allowed to import every service; a command spanning two
services (deploy a chosen model: promote's gate, then deploy's override) is composed here.
"""

from __future__ import annotations

from datetime import datetime

from keel.errors import KeelError
from keel.events import Event
from keel.events import generated as g
from keel.pipeline import Context
from keel_services.deploy.handlers import deploy_override, rollback
from keel_services.ingest.handlers import ingest_file
from keel_services.promote.handlers import evaluate, gate, review

__all__ = ["deploy_chosen", "evaluate", "ingest_file", "review", "rollback"]


def deploy_chosen(
    ctx: Context,
    family: str,
    model_id: str,
    env: str,
    reason: str,
    at: datetime,
    override: bool = False,
) -> Event:
    """`keel deploy MODEL`: the gate is checked now and recorded (trigger "deploy", the
    person's reason as its note). Passed: the promotion follows (deployed, or pending where
    approval is required). Failed: refused, unless `override`, which deploys it anyway as an
    override carrying the reason. Returns the deciding event (or the override deployment)."""
    if not reason.strip():
        raise KeelError("deploying a chosen model needs a reason", hint='add --reason "..."')
    current = ctx.read.serving_at(family, env, at)  # at the deployment's own business time
    if current is not None and current.model_id == model_id:
        raise KeelError(
            f"{model_id[:12]} already serves {family}/{env} at {at.isoformat()}",
            hint="nothing to do",
        )
    decided = gate(ctx, family, model_id, env, None, at, trigger="deploy", note=reason)
    ctx.publish(decided)
    decision = decided[0]
    if not isinstance(decision, g.PromotionRejected):
        return decision
    if not override:
        raise KeelError(
            f"{model_id[:12]} fails the {env} gate ({', '.join(decision.failed_gates)}): "
            f"{decision.reason}; recorded, nothing deployed",
            hint="deploy it anyway with --override (recorded as an override with your reason)",
        )
    return deploy_override(
        ctx,
        family,
        model_id=model_id,
        env=env,
        at=at,
        decision_id=decision.envelope.event_id,
        reason=reason,
    )
