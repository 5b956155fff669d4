"""promote: gate each evaluated candidate into the first environment, and each model deployed
there into the next one; where the environment's policy requires approval, a passed gate is a
pending promotion that people approve or reject. Decisions are appended, never changed.

The commands people run (`keel promote evaluate|approve|reject`, `keel deploy MODEL`) call the
functions at the end; what they record goes round the same handlers as the pipeline's events.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from keel.errors import KeelError
from keel.events import Event
from keel.events import generated as g
from keel.metrics import higher_is_better
from keel.pipeline import Context
from keel.registry_events import promotion_rejected
from keel.service import Producer, make_envelope
from keel_services.promote.domain import Incumbent, Serving, decide

SERVICE = Producer("promote", __package__ or __name__)  # its identity and code version


def gate(
    ctx: Context,
    family: str,
    model_id: str,
    env: str,
    cause: Event | None,
    at: datetime | None = None,
    trigger: str = "pipeline",
    note: str | None = None,
) -> list[Event]:
    """The decision for `model_id` in `env` under the environment's current policy: promoted,
    rejected, or (approval required) pending. `cause`: the event it follows, if any; `trigger`
    and `note` say who asked and why when a person did."""
    fam = ctx.project.family(family)
    if cause is not None and any(
        ctx.read.caused_ids(cause.envelope.event_id, t)
        for t in ("ModelPromoted", "PromotionRejected", "PromotionPending")
    ):
        return []  # decided before a crash (the event was redelivered): once is enough
    when = at or (cause.envelope.occurred_at if cause is not None else None)
    assert when is not None
    # judged at the decision's business time: a backdated decision against what served then
    current = ctx.read.serving_at(family, env, when)
    if trigger == "pipeline" and current is not None and current.model_id == model_id:
        return []  # already serving there (then)
    evaluation = ctx.read.latest_eval(model_id)
    if evaluation is None:
        if trigger == "pipeline":
            return []
        raise KeelError(
            f"model {model_id[:12]} has no evaluation, so no gate can be checked",
            hint="evaluate it with `keel retrain` (its eval report is what the gates read)",
        )
    incumbent = None
    if current is not None and current.model_id != model_id:
        inc_eval = ctx.read.latest_eval(current.model_id)
        incumbent = Incumbent(current.model_id, dict(inc_eval.metrics) if inc_eval else {})
    policy = fam.promotion.get(env)
    if policy is None:
        if trigger == "pipeline":
            return []  # config load refuses environments without a policy
        raise KeelError(f"{family} has no environment {env!r}", hint=f"one of: {fam.environments}")
    serving = Serving(
        f"{env} at {when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        itself=current is not None and current.model_id == model_id,
    )
    decision = decide(
        evaluation.metrics, incumbent, policy, lambda m: higher_is_better(fam.task, m), serving
    )
    common = dict(
        family=family,
        model_id=model_id,
        env=env,
        eval_report_id=evaluation.eval_report_id,
        metrics=dict(evaluation.metrics),
        gates=decision.gates,
        incumbent_model_id=incumbent.model_id if incumbent else None,
        incumbent_metrics=dict(incumbent.metrics) if incumbent else {},
        reason=decision.reason,
        trigger=trigger,
        note=note,
        policy_version=policy.version(),
    )
    eid = cause.envelope.event_id if cause is not None else None
    subject = f"{family}/{env}"
    if decision.promoted and policy.approval == "required":
        # who triggered it: the person behind the evaluation (or the request), never a service
        who = cause.envelope.actor if cause is not None else ctx.actor
        env_ = make_envelope(ctx, SERVICE, "PromotionPending", subject, when, eid)
        return [
            g.PromotionPending(
                envelope=env_,
                approvals_required=policy.approvers,
                excluded_approvers=(who,) if policy.separate_approver else (),
                **common,  # type: ignore[arg-type]
            )
        ]
    if decision.promoted:
        env_ = make_envelope(ctx, SERVICE, "ModelPromoted", subject, when, eid)
        return [g.ModelPromoted(envelope=env_, **common)]  # type: ignore[arg-type]
    env_ = make_envelope(ctx, SERVICE, "PromotionRejected", subject, when, eid)
    return [promotion_rejected(env_, failed_gates=decision.failed, **common)]  # type: ignore[arg-type]


def on_model_evaluated(ctx: Context, event: Event) -> list[Event]:
    assert isinstance(event, g.ModelEvaluated)
    first_env = ctx.project.family(event.family).environments[0]
    return gate(ctx, event.family, event.model_id, first_env, event)


def on_model_deployed(ctx: Context, event: Event) -> list[Event]:
    """A promotion deployed to one environment is a candidate for the next one."""
    assert isinstance(event, g.ModelDeployed)
    if event.kind != "promotion":
        return []  # before the family is looked up: an MLflow family is in no keel.toml
    envs = ctx.project.family(event.family).environments
    if event.env not in envs:
        return []
    i = envs.index(event.env)
    if i + 1 >= len(envs):
        return []
    return gate(ctx, event.family, event.model_id, envs[i + 1], event)


def on_promotion_reviewed(ctx: Context, event: Event) -> list[Event]:
    """Enough distinct approvals conclude a pending promotion: the promotion is recorded (and
    the deploy service deploys it). A rejection concludes it with nothing deployed."""
    assert isinstance(event, g.PromotionReviewed)
    pending = ctx.read.pending(event.pending_event_id)
    if pending is None or event.verdict != "approved":
        return []
    pid = pending.envelope.event_id
    approvers = ctx.read.approvers(pid)
    if ctx.read.concluded(pid) or len(approvers) < pending.approvals_required:
        return []
    env_ = make_envelope(
        ctx,
        SERVICE,
        "ModelPromoted",
        f"{pending.family}/{pending.env}",
        event.envelope.occurred_at,
        event.envelope.event_id,
    )
    return [
        g.ModelPromoted(
            envelope=env_,
            family=pending.family,
            model_id=pending.model_id,
            env=pending.env,
            eval_report_id=pending.eval_report_id,
            metrics=pending.metrics,
            gates=pending.gates,
            incumbent_model_id=pending.incumbent_model_id,
            incumbent_metrics=pending.incumbent_metrics,
            reason=f"{pending.reason}; approved by {', '.join(approvers)}",
            trigger="approval",
            note=pending.note,
            policy_version=pending.policy_version,
            approved_by=tuple(approvers),
            pending_event_id=pid,
        )
    ]


HANDLERS = {
    "ModelEvaluated": on_model_evaluated,
    "ModelDeployed": on_model_deployed,
    "PromotionReviewed": on_promotion_reviewed,
}


# -- what people ask for ------------------------------------------------------------------------
def evaluate(ctx: Context, family: str, model_id: str, env: str, at: datetime) -> list[Event]:
    """Re-run `env`'s gate for a model under the policy as it is now, and record the decision
    (with the policy's version). A pass promotes (or waits for approval) like any other."""
    events = gate(ctx, family, model_id, env, None, at, trigger="evaluate")
    ctx.publish(events)
    return events


def review(
    ctx: Context, family: str, model_id: str, env: str, verdict: str, reason: str, at: datetime
) -> g.PromotionReviewed:
    """Approve or reject the open pending promotion of `model_id` in `env`, as the person
    running the command (KEEL_IDENTITY, else the actor). What follows (the promotion once
    enough people approved, then the deployment) is recorded by the handlers."""
    person = ctx.rt.settings.identity or ctx.actor
    if ctx.rt.trust.enabled and not ctx.rt.settings.identity:
        raise KeelError(
            "approvals are signed by the person who gives them",
            hint="set KEEL_IDENTITY to your identity (declared in keel.toml with "
            'emits = ["PromotionReviewed", ...]) and KEEL_KEYS_DIR to where its key is',
        )
    if not reason.strip():
        raise KeelError("a review needs a reason", hint='add --reason "..."')
    opened = [p for p in ctx.read.open_pending(family, env) if p.model_id == model_id]
    if not opened:
        waiting = [p.model_id[:12] for p in ctx.read.open_pending(family, env)]
        raise KeelError(
            f"no promotion of {model_id[:12]} to {env} is waiting for approval",
            hint=f"waiting in {env}: {', '.join(waiting)}"
            if waiting
            else f"see `keel promote pending --family {family}`",
        )
    pending = opened[-1]
    pid = pending.envelope.event_id
    if person in pending.excluded_approvers:
        raise KeelError(
            f"{person} triggered this promotion and the {env} policy requires someone else "
            "to review it",
            hint="ask another person to run `keel promote approve` (separate_approver)",
        )
    if any(r.envelope.actor == person for r in ctx.read.reviews(pid)):
        raise KeelError(f"{person} already reviewed this promotion", hint="one review per person")
    envelope = make_envelope(ctx, SERVICE, "PromotionReviewed", f"{family}/{env}", at, pid)
    event = g.PromotionReviewed(
        envelope=dataclasses.replace(envelope, actor=person),
        family=family,
        model_id=model_id,
        env=env,
        pending_event_id=pid,
        verdict=verdict,
        reason=reason,
    )
    ctx.publish([event])
    return event
