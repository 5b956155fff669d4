"""People in the loop: `keel promote approve|reject|evaluate|pending` and `keel deploy MODEL`.

Each records what the person did (with them as actor, signed by them where keys are declared)
and lets the services' handlers do what follows: a promotion once enough people approved, a
deployment once promoted. The work is done by the services' code, reached through
the composition root (keel_services.entrypoints.wiring); these commands parse, call and print.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import typer

from keel.client import Client
from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.cli.pipeline_cmd import AtOpt, JsonOpt, ProjectOpt, _settings
from keel_services.entrypoints.container import open_client

app = typer.Typer(
    help="Promotion decisions people make: approve or reject a pending promotion, re-run a "
    "gate under the current policy, list what waits for approval.",
    no_args_is_help=True,
)
EnvOpt = typer.Option(..., "--env", help="environment, e.g. prod")
ReasonOpt = typer.Option(..., "--reason", help="why, in your words (recorded)")


def say(doc: dict[str, Any], first: str) -> None:
    console.print(first, highlight=False)
    if doc["deployed"]:
        console.print(f"{doc['env']} now serves {doc['model_id']}", highlight=False)
    elif doc.get("pending"):
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


def _client(project: Path | None, create: bool = True) -> AbstractContextManager[Client]:
    """The command's client on the container: with the services' commands (a query makes no
    KEEL_HOME: create=False)."""
    return open_client(_settings(project), create=create, acting=True)


def _review(verdict: str, model: str, env: str, reason: str, at: str | None, **o: Any) -> None:
    with _client(o["project"]) as k:
        done = (
            k.approve(model, env, reason, at)
            if verdict == "approved"
            else k.reject(model, env, reason, at)
        )
    doc = {**done.model_dump(mode="json"), "verdict": verdict}
    if o["json_out"]:
        print_json(doc)
        return
    say(doc, f"{verdict} by {doc['actor']}: {reason}")


@app.command("approve")
@handled
def approve(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    reason: str = ReasonOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Approve MODEL's pending promotion to ENV; with the approvals its policy requires it is
    promoted and deployed. Recorded with you as actor (KEEL_IDENTITY, signed, where keys are
    declared)."""
    _review("approved", model, env, reason, at, project=project, json_out=json_out)


@app.command("reject")
@handled
def reject(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    reason: str = ReasonOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Reject MODEL's pending promotion to ENV: nothing is deployed, and the promotion stays
    declined (re-run the gate with `keel promote evaluate` to ask again)."""
    _review("rejected", model, env, reason, at, project=project, json_out=json_out)


@app.command("evaluate")
@handled
def evaluate_cmd(
    model: str = typer.Argument(..., help="model ID or prefix"),
    env: str = EnvOpt,
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Re-run ENV's gate for MODEL under the policy as keel.toml says now, and record the
    decision with the policy's version. A pass is a promotion like any other (deployed, or
    pending where approval is required); a model already serving ENV stays as it is."""
    with _client(project) as k:
        doc = k.evaluate(model, env, at).model_dump(mode="json")
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
    with _client(project, create=False) as k:
        rows = k.pending(family, env)
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
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Deploy a chosen model to ENV: its gate is checked now and recorded; a pass deploys it
    (or waits for approval where required); a failure is refused unless --override."""
    with _client(project) as k:
        doc = k.deploy(model, env, reason, override, at).model_dump(mode="json")
    if json_out:
        print_json(doc)
        return
    first = "OVERRIDE: deployed although its gate failed" if doc["override"] else "gate passed"
    say(doc, f"{first} ({reason})")
