"""promote: gate each evaluated candidate into the first environment, and each model deployed
there into the next one. Decisions are appended, never changed."""

from __future__ import annotations

from keel.events import Event
from keel.events import generated as g
from keel.metrics import higher_is_better
from keel.pipeline import Context
from services.common import make_envelope
from services.promote.domain import Incumbent, decide

SERVICE = "promote"


def gate(ctx: Context, family: str, model_id: str, env: str, cause: Event) -> list[Event]:
    fam = ctx.project.family(family)
    current = ctx.state.serving_now(family, env)
    if current is not None and current.model_id == model_id:
        return []  # already serving there
    evaluation = ctx.state.latest_eval(model_id)
    if evaluation is None:
        return []
    incumbent = None
    if current is not None:
        inc_eval = ctx.state.latest_eval(current.model_id)
        incumbent = Incumbent(current.model_id, dict(inc_eval.metrics) if inc_eval else {})
    policy = fam.promotion.get(env)
    if policy is None:
        return []  # config load refuses environments without a policy; nothing to decide here
    decision = decide(
        evaluation.metrics, incumbent, policy, lambda m: higher_is_better(fam.task, m)
    )
    at = cause.envelope.occurred_at
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
    )
    eid = cause.envelope.event_id
    if decision.promoted:
        env_ = make_envelope(ctx, SERVICE, "ModelPromoted", f"{family}/{env}", at, eid)
        return [g.ModelPromoted(envelope=env_, **common)]  # type: ignore[arg-type]
    env_ = make_envelope(ctx, SERVICE, "PromotionRejected", f"{family}/{env}", at, eid)
    return [g.PromotionRejected(envelope=env_, failed_gates=tuple(decision.failed), **common)]  # type: ignore[arg-type]


def on_model_evaluated(ctx: Context, event: Event) -> list[Event]:
    assert isinstance(event, g.ModelEvaluated)
    first_env = ctx.project.family(event.family).environments[0]
    return gate(ctx, event.family, event.model_id, first_env, event)


def on_model_deployed(ctx: Context, event: Event) -> list[Event]:
    """A promotion deployed to one environment is a candidate for the next one."""
    assert isinstance(event, g.ModelDeployed)
    envs = ctx.project.family(event.family).environments
    if event.kind != "promotion" or event.env not in envs:
        return []
    i = envs.index(event.env)
    if i + 1 >= len(envs):
        return []
    return gate(ctx, event.family, event.model_id, envs[i + 1], event)


HANDLERS = {"ModelEvaluated": on_model_evaluated, "ModelDeployed": on_model_deployed}
