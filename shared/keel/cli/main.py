"""The `keel` command: one Typer app with a sub-command per area."""

from __future__ import annotations

import typer

from keel import __version__
from keel.cli import (
    artifacts_cmd,
    audit_cmd,
    demo_cmd,
    init_cmd,
    inventory_cmd,
    keys_cmd,
    lineage_cmd,
    pipeline_cmd,
    promote_cmd,
    schemas_cmd,
    step_cmd,
    topics_cmd,
)

app = typer.Typer(
    name="keel",
    help="Keel: schemas checked at every layer, immutable content-addressed artifacts with "
    "lineage, and an audit trail for model-retraining pipelines.\n\n"
    "State lives in KEEL_HOME (default ./.keel). KEEL_BUS and KEEL_VIEWS choose backends "
    "(default: embedded SQLite files inside KEEL_HOME).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(schemas_cmd.app, name="schemas")
app.add_typer(artifacts_cmd.app, name="artifacts")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(init_cmd.contracts_app, name="contracts")
app.command("init")(init_cmd.init)
app.command("demo")(demo_cmd.demo)
app.command("ingest")(pipeline_cmd.ingest)
app.command("retrain")(pipeline_cmd.retrain)
app.add_typer(pipeline_cmd.deploy_app, name="deploy")
pipeline_cmd.deploy_app.command("model", hidden=True)(promote_cmd.deploy_model)
app.add_typer(promote_cmd.app, name="promote")
app.command("families")(inventory_cmd.families)
app.add_typer(inventory_cmd.models_app, name="models")
app.add_typer(inventory_cmd.datasets_app, name="datasets")
app.add_typer(inventory_cmd.deployments_app, name="deployments")
artifacts_cmd.app.command("list")(inventory_cmd.artifacts_list)
app.add_typer(topics_cmd.app, name="topics")
app.add_typer(step_cmd.app, name="step")
app.add_typer(lineage_cmd.app, name="lineage")
app.add_typer(pipeline_cmd.service_app, name="service")
app.command("replay")(audit_cmd.replay)
schemas_cmd.app.command("reconcile")(pipeline_cmd.reconcile_cmd)
app.command("serve")(pipeline_cmd.serve_cmd)


@app.command("version")
def version() -> None:
    """Print Keel's version."""
    typer.echo(__version__)


def main() -> None:
    app()
