"""People in the loop: `keel promote approve|reject|evaluate|pending` and `keel deploy MODEL`.

Each records what the person did (with them as actor, signed by them where keys are declared)
and lets the services' handlers do what follows: a promotion once enough people approved, a
deployment once promoted. The functions doing the work are in services/promote and
services/deploy; these commands parse, call and print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from keel.cli.common import console, handled, print_json
from keel.cli.pipeline_cmd import AtOpt, JsonOpt, ProjectOpt, _when, pipeline
from keel.errors import KeelError
from keel.events import generated as g
from keel.pipeline import Context

app = typer.Typer(
    help="Promotion decisions people make: approve or reject a pending promotion, re-run a "
    "gate under the current policy, list what waits for approval.",
    no_args_is_help=True,
)
EnvOpt = typer.Option(..., "--env", help="environment, e.g. prod")
ReasonOpt = typer.Option(..., "--reason", help="why, in your words (recorded)")
FamilyOpt = typer.Option(None, "--family", help="model family (default: the model's own)")


def resolve_model(ctx: Context, model: str, family: str | None) -> tuple[str, str]:
    """(model ID, family) from an ID or prefix; the family is the model's own."""
    model_id = ctx.rt.artifacts.resolve(model)
    trained = ctx.state.models.get(model_id)
    if trained is None:
        raise KeelError(
            f"{model_id[:12]} is not a trained model", hint="`keel audit history` lists models"
        )
    if family is not None and family != trained.family:
        raise KeelError(f"{model_id[:12]} belongs to family {trained.family!r}, not {family!r}")
    return model_id, trained.family


def outcome(ctx: Context, family: str, model_id: str, env: str) -> dict[str, Any]:
    """Where a model stands in an environment after a command: serving, pending (with the
    approvals so far) or neither."""
    current = ctx.state.serving_now(family, env)
    doc: dict[str, Any] = {
        "family": family,
        "model_id": model_id,
        "env": env,
        "serving": current.model_id if current else None,
        "deployed": bool(current and current.model_id == model_id),
    }
    waiting = [p for p in ctx.state.open_pending(family, env) if p.model_id == model_id]
    if waiting:
        p = waiting[-1]
        doc["pending"] = {
            "event_id": p.envelope.event_id,
            "approvals": ctx.state.approvers(p.envelope.event_id),
            "approvals_required": p.approvals_required,
            "excluded_approvers": list(p.excluded_approvers),
        }
    return doc


def say(doc: dict[str, Any], first: str) -> None:
    console.print(first, highlight=False)
    if doc["deployed"]:
        console.print(f"{doc['env']} now serves {doc['model_id']}", highlight=False)
    elif "pending" in doc:
        p = doc["pending"]
        who = ", ".join(p["approvals"]) or "nobody yet"
        console.print(
            f"waiting for approval in {doc['env']}: {len(p['approvals'])} of "
            f"{p['approvals_required']} ({who}); approve with `keel promote approve "
            f"{doc['model_id'][:12]} --env {doc['env']} --reason ...`",
            highlight=False,
        )
    else:
        console.print(f"{doc['env']} serves {doc['serving']}", highlight=False)


def _review(
    verdict: str, model: str, env: str, reason: str, family: str | None, at: str | None, **o: Any
) -> None:
    from services.promote.handlers import review

    with pipeline(o["project"]) as ctx:
        model_id, fam = resolve_model(ctx, model, family)
        event = review(ctx, fam, model_id, env, verdict, reason, _when(at))
        doc = {"review_event_id": event.envelope.event_id, "verdict": verdict}
        doc |= outcome(ctx, fam, model_id, env)
    if o["json_out"]:
        print_json(doc)
        return
    say(doc, f"{verdict} by {event.envelope.actor}: {reason}")


@app.command("approve")
@handled
def approve(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    reason: str = ReasonOpt,
    family: str | None = FamilyOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Approve MODEL's pending promotion to ENV; with the approvals its policy requires it is
    promoted and deployed. Recorded with you as actor (KEEL_IDENTITY, signed, where keys are
    declared)."""
    _review("approved", model, env, reason, family, at, project=project, json_out=json_out)


@app.command("reject")
@handled
def reject(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    reason: str = ReasonOpt,
    family: str | None = FamilyOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Reject MODEL's pending promotion to ENV: nothing is deployed, and the promotion stays
    declined (re-run the gate with `keel promote evaluate` to ask again)."""
    _review("rejected", model, env, reason, family, at, project=project, json_out=json_out)


@app.command("evaluate")
@handled
def evaluate_cmd(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    family: str | None = FamilyOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Re-run ENV's gate for MODEL under the policy as keel.toml says now, and record the
    decision with the policy's version. A pass is a promotion like any other (deployed, or
    pending where approval is required); a model already serving ENV stays as it is."""
    from services.promote.handlers import evaluate

    with pipeline(project) as ctx:
        model_id, fam = resolve_model(ctx, model, family)
        events = evaluate(ctx, fam, model_id, env, _when(at))
        decision = events[0]
        assert isinstance(decision, g.ModelPromoted | g.PromotionRejected | g.PromotionPending)
        doc = {
            "decision": type(decision).__name__,
            "event_id": decision.envelope.event_id,
            "policy_version": decision.policy_version,
            "reason": decision.reason,
        } | outcome(ctx, fam, model_id, env)
    if json_out:
        print_json(doc)
        return
    say(doc, f"{doc['decision']} (policy {doc['policy_version']}): {doc['reason']}")


@app.command("pending")
@handled
def pending_cmd(
    family: str = typer.Option(..., "--family", help="model family"),
    env: str | None = typer.Option(None, "--env", help="only this environment"),
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Promotions waiting for approval, oldest first, with the approvals given so far."""
    with pipeline(project) as ctx:
        envs = [env] if env else ctx.project.family(family).environments
        rows: list[dict[str, Any]] = [
            {
                "env": p.env,
                "model_id": p.model_id,
                "event_id": p.envelope.event_id,
                "at": p.envelope.occurred_at.isoformat(),
                "triggered_by": p.envelope.actor,
                "approvals": ctx.state.approvers(p.envelope.event_id),
                "approvals_required": p.approvals_required,
                "reason": p.reason,
            }
            for e in envs
            for p in ctx.state.open_pending(family, e)
        ]
    if json_out:
        print_json({"pending": rows})
        return
    if not rows:
        console.print("nothing is waiting for approval")
    for r in rows:
        console.print(
            f"{r['env']}: {r['model_id']} since {r['at'][:19]} (by {r['triggered_by']}), "
            f"{len(r['approvals'])} of {r['approvals_required']} approvals: {r['reason']}",
            highlight=False,
        )


@handled
def deploy_model(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    reason: str = ReasonOpt,
    override: bool = typer.Option(
        False, "--override", help="deploy even if ENV's gate fails (recorded as an override)"
    ),
    family: str | None = FamilyOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Deploy a chosen model to ENV: its gate is checked now and recorded; a pass deploys it
    (or waits for approval where required); a failure is refused unless --override."""
    from services.deploy.handlers import deploy_chosen

    with pipeline(project) as ctx:
        model_id, fam = resolve_model(ctx, model, family)
        event = deploy_chosen(ctx, fam, model_id, env, reason, _when(at), override)
        doc: dict[str, Any] = {"event_type": event.EVENT_TYPE, "event_id": event.envelope.event_id}
        doc |= outcome(ctx, fam, model_id, env)
        doc["override"] = isinstance(event, g.ModelDeployed) and event.kind == "override"
    if json_out:
        print_json(doc)
        return
    first = "OVERRIDE: deployed although its gate failed" if doc["override"] else "gate passed"
    say(doc, f"{first} ({reason})")
