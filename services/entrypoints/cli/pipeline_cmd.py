"""Pipeline commands: `keel ingest`, `keel retrain`, `keel deploy rollback`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from keel.errors import KeelError
from keel.pipeline import Context
from keel.project import load_project
from keel.settings import Settings
from keel.timeparse import business_time
from keel_services.entrypoints.cli.common import console, err_console, handled, print_json, safe
from keel_services.entrypoints.container import build, open_client

ProjectOpt = typer.Option(
    None, "--project", help="keel.toml (default: $KEEL_PROJECT or ./keel.toml)"
)
AtOpt = typer.Option(None, "--at", help="business time, ISO 8601 (default: now; no zone = UTC)")
FamilyOpt = typer.Option(..., "--family", help="model family declared in keel.toml")
JsonOpt = typer.Option(False, "--json", help="print JSON")


class _DeployGroup(TyperGroup):
    """`keel deploy MODEL ...` and `keel deploy rollback ...`: a first argument that is not a
    sub-command is a model, for the `model` sub-command."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["model", *args]
        return super().resolve_command(ctx, args)


deploy_app = typer.Typer(
    help="Deployments: what serves each environment. `keel deploy MODEL --env E --reason R` "
    "deploys a chosen model (its gate checked now; --override deploys one that fails it).",
    no_args_is_help=True,
    cls=_DeployGroup,
)
service_app = typer.Typer(
    help="Run a long-lived service in its own consumer group.", no_args_is_help=True
)


def _when(at: str | None) -> datetime:
    when, assumed = business_time(at)
    if assumed:
        err_console.print(f"note: --at {at} has no zone; UTC assumed")
    return when


def _settings(project: Path | None, principal: str = "") -> Settings:
    """Settings from the environment (KEEL_*); --project chooses keel.toml (and keys.toml
    beside it); principal: who a service's process is to a secured stack (keel.secure.acl)
    when KEEL_PRINCIPAL does not say. The adapters take it from these settings (bootstrap)."""
    s = Settings(project=project) if project else Settings()
    return s.model_copy(update={"principal": principal}) if principal and not s.principal else s


@contextmanager
def pipeline(project: Path | None, settings: Settings | None = None) -> Iterator[Context]:
    """The application's pipeline context; settings: instead of the environment's (a service
    process passes its principal in them)."""
    with build(settings or _settings(project)) as app, app.pipeline() as ctx:
        yield ctx


@handled
def ingest(
    file: Path = typer.Argument(..., help="CSV, JSON Lines or Parquet file of records"),
    family: str = FamilyOpt,
    at: str | None = AtOpt,
    period: str | None = typer.Option(None, help="which batch this is, e.g. 2026-03"),
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Validate every record against the family's training contract; valid ones become a
    dataset artifact, invalid ones go to the quarantine with field, value and rule."""
    with open_client(_settings(project), create=True, acting=True) as k:
        res = k.ingest(file, family, _when(at), period).model_dump(mode="json")
    if json_out:
        print_json(res)
        return
    console.print(f"dataset {res['dataset_id']}", highlight=False)
    console.print(
        f"{res['records_in']} records in = {res['accepted']} accepted + "
        f"{res['quarantined']} quarantined"
    )
    if res["quarantine_batch_id"]:
        _quarantine_summary(res)


TOP_REASONS = 5


def _quarantine_summary(res: dict[str, Any]) -> None:
    """Why records were quarantined, the most frequent first: what to fix before re-sending."""
    reasons = res.get("quarantine_reasons") or []
    console.print("quarantined, by reason (a record may break several rules):")
    for r in reasons[:TOP_REASONS]:
        where = f"{r['field']}: " if r["field"] else ""
        console.print(
            escape(safe(f"  {r['records']:>6}  {where}{r['rule']}  (e.g. {r['example'][:120]})")),
            highlight=False,
        )
    if len(reasons) > TOP_REASONS:
        console.print(f"  ... and {len(reasons) - TOP_REASONS} more reason(s)")
    console.print(
        escape(
            f"quarantine batch {res['quarantine_batch_id']}; every record and its reasons: "
            "`keel audit tail --topic quarantine`"
        ),
        highlight=False,
    )


@handled
def retrain(
    family: str = FamilyOpt,
    eval_dataset: str = typer.Option(..., "--eval-dataset", help="held-out dataset ID (or prefix)"),
    dataset: list[str] = typer.Option(
        [], "--dataset", help="training dataset IDs (default: all but the eval one)"
    ),
    at: str | None = AtOpt,
    reason: str | None = typer.Option(None, "--reason", help="why (recorded in the request)"),
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Record a RetrainRequested: the feature service builds features, train trains and
    evaluates, the promotion gate and deployment follow. On the embedded default they run now,
    in this process; with KEEL_INLINE_SERVICES=false the `keel service run` processes do."""
    with open_client(_settings(project), create=True, acting=True) as k:
        doc = k.retrain(family, eval_dataset, dataset, _when(at), reason).model_dump(mode="json")
    if json_out:
        print_json(doc)
        return
    if doc["model_id"] is None:
        console.print(f"retrain requested: {doc['request_id']}", highlight=False)
        console.print(
            "the feature and train services act on it: `keel audit tail --topic training`"
        )
        return
    console.print(f"model {doc['model_id']}", highlight=False)
    console.print(", ".join(f"{k}={v:.4f}" for k, v in sorted(doc["metrics"].items())))
    for d in doc["decisions"]:
        console.print(f"{d['env']}: {d['decision']}: {d['reason']}", highlight=False)


@deploy_app.command("rollback")
@handled
def rollback(
    family: str = FamilyOpt,
    env: str = typer.Option(..., "--env", help="environment to roll back, e.g. prod"),
    to: str | None = typer.Option(
        None,
        "--to",
        help="model ID or prefix: one that served ENV before or once passed its gate "
        "(default: the previous one)",
    ),
    reason: str | None = typer.Option(None, "--reason", help="why (recorded)"),
    at: str | None = AtOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Deploy an earlier model to ENV again; recorded like any deployment (kind=rollback)."""
    from keel_services.entrypoints import wiring

    with pipeline(project) as ctx:
        event = wiring.rollback(ctx, family, env, to, _when(at), reason)
    doc = {
        "env": env,
        "model_id": event.model_id,
        "previous_model_id": event.previous_model_id,
        "manifest_id": event.manifest_id,
    }
    if json_out:
        print_json(doc)
    else:
        console.print(
            f"{env} now serves {event.model_id} (was {event.previous_model_id})", highlight=False
        )


@service_app.command("run")
@handled
def service_run(
    name: str = typer.Argument(
        ...,
        help="feature, train, promote, deploy, projector (consumer groups); ingest, audit, "
        "mlflow-bridge (HTTP)",
    ),
    project: Path | None = ProjectOpt,
    max_idle: float | None = typer.Option(
        None, "--max-idle", help="stop after this many idle seconds"
    ),
    host: str = typer.Option("127.0.0.1", help="ingest/audit: address to listen on"),
    port: int = typer.Option(8081, help="ingest/audit: port to listen on"),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        help="consumer services: serve Prometheus /metrics on 127.0.0.1:PORT "
        "(HTTP services answer /metrics on their own port)",
    ),
) -> None:
    """feature / train / promote / deploy: consume every event topic as consumer group
    service-NAME and act on NAME's events (a retrain flows RetrainRequested -> feature ->
    FeaturesBuilt -> train -> ModelEvaluated -> promote -> deploy). projector: fold every
    event into the audit views and extend the log's Merkle trees, with a signed checkpoint per
    batch, as consumer group service-projector. Run one at a time: a second one fences the
    first's checkpoint writer, and the first stops at its next append.
    ingest: POST /v1/families/{family}/records. audit: the audit questions as a JSON API.
    mlflow-bridge: POST /v1/mlflow/webhooks records MLflow registry webhooks (secret in
    KEEL_MLFLOW_WEBHOOK_SECRET; docs/mlflow.md).
    HTTP services publish OpenAPI at /docs."""
    from keel_services.entrypoints import wiring
    from keel_services.entrypoints.runner import PROJECTOR, run_projector, run_service, runnable

    # To a secured stack each service is its own principal (keel.secure.acl).
    settings = _settings(project, principal=name)
    token = settings.api_token or None

    def say(msg: str) -> None:
        console.print(msg, highlight=False)

    if metrics_port is not None and name not in ("ingest", "audit"):
        from keel.telemetry import serve_metrics

        serve_metrics(metrics_port)
        say(f"metrics on http://127.0.0.1:{metrics_port}/metrics")
    if name == PROJECTOR:
        with build(settings) as app:
            progress = run_projector(app, say, max_idle)
        console.print(f"projector: {progress}")
        return
    if name == "audit":
        with build(settings) as app:
            console.print(f"audit API on http://{host}:{port} (OpenAPI at /docs)")
            wiring.serve_audit(app, host, port, token)
        return
    if name == "mlflow-bridge":
        secret = settings.mlflow_webhook_secret
        if not secret:
            raise KeelError(
                "the MLflow bridge needs the webhooks' shared secret",
                hint="set KEEL_MLFLOW_WEBHOOK_SECRET to the secret given to MLflow's "
                "create_webhook (docs/mlflow.md)",
            )
        # always its own principal on a secured stack (its name is not its principal's)
        bridge = settings.model_copy(update={"principal": "mlflow_bridge"})
        with pipeline(project, bridge) as ctx:
            url = f"http://{host}:{port}/v1/mlflow/webhooks"
            console.print(f"MLflow bridge: webhooks to {url}", highlight=False)
            wiring.serve_mlflow_bridge(ctx, host, port, secret)
        return
    if name == "ingest":
        with pipeline(project, settings) as ctx:
            console.print(f"ingest on http://{host}:{port} (OpenAPI at /docs)")
            wiring.serve_ingest(ctx, host, port, token)
        return
    if name not in runnable():
        raise KeelError(
            f"no service named {name!r}",
            hint=f"consumer groups: {', '.join(runnable())}; HTTP: ingest, audit, mlflow-bridge",
        )
    with build(settings) as app:
        stats = run_service(app, name, say, max_idle)
    console.print(f"{name}: {stats}")


@handled
def reconcile_cmd(
    family: str = FamilyOpt,
    project: Path | None = ProjectOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Check the family's training contract against its inference contract and record the
    verdict (SchemaReconciled / SchemaReconciliationFailed). Exit 1 when they diverge."""
    from keel.contract_gate import check_contracts
    from keel.events import generated as g
    from keel.service import Producer

    # Recorded as identity `contracts`, with this command's code version (the application's)
    checker = Producer("contracts", __package__ or __name__)
    with pipeline(project) as ctx:
        ctx.project.family(family)
        verdict = check_contracts(ctx, family, "cli", datetime.now(UTC), checker)
    failed = isinstance(verdict, g.SchemaReconciliationFailed)
    problems = (
        [p.to_avro() for p in verdict.problems]
        if isinstance(verdict, g.SchemaReconciliationFailed)
        else []
    )
    doc = {
        "family": family,
        "compatible": not failed,
        "training_fingerprint": verdict.training_fingerprint,
        "inference_fingerprint": verdict.inference_fingerprint,
        "event_id": verdict.envelope.event_id,
        "problems": problems,
    }
    if json_out:
        print_json(doc)
    elif not failed:
        console.print(f"{family}: training and inference contracts are compatible")
    else:
        for p in problems:
            console.print(f"[red]{escape(p['rule'])}[/] {escape(safe(p['message']))}", markup=True)
    if failed:
        raise typer.Exit(1)


@handled
def serve_cmd(
    family: str = FamilyOpt,
    env: str = typer.Option("prod", "--env", help="serve the model deployed to this environment"),
    project: Path | None = ProjectOpt,
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8080, help="port to listen on"),
) -> None:
    """Serve predictions for FAMILY from ENV's current deployment; payloads are validated against
    the inference contract; hot-swaps on ModelDeployed. OpenAPI at /docs."""
    from keel_services.entrypoints import wiring

    settings = _settings(project, principal="serve")  # its principal on a secured stack
    proj = load_project(settings.project)
    proj.family(family)
    with build(settings, create=False) as app:
        wiring.serve_model(
            app,
            proj,
            family,
            env,
            host,
            port,
            settings.api_token or None,
            lambda msg: console.print(msg, highlight=False),
        )
