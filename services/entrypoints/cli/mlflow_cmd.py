"""`keel mlflow import`: MLflow's model registry as it stands, recorded once."""

from __future__ import annotations

from pathlib import Path

import typer

from keel_services.entrypoints.cli.common import console, handled, print_json

app = typer.Typer(
    help="MLflow's model registry in Keel's trail: `keel mlflow import`; webhooks: `keel service "
    "run mlflow-bridge`.",
    no_args_is_help=True,
)


@app.command("import")
@handled
def import_cmd(
    tracking_uri: str = typer.Option(
        ..., "--tracking-uri", help="the MLflow server, e.g. http://127.0.0.1:5000"
    ),
    model: str | None = typer.Option(None, "--model", help="one registered model (default: all)"),
    project: Path | None = typer.Option(
        None, "--project", help="keel.toml (default: $KEEL_PROJECT or ./keel.toml)"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Record the registry as it stands (models, versions with source, run and tags, current
    aliases as deployments of kind import) in one append; answers say that the history before
    the import is unknown. MLflow unreachable: an error, nothing recorded."""
    from keel_services.entrypoints import wiring
    from keel_services.entrypoints.cli.pipeline_cmd import pipeline

    with pipeline(project) as ctx:
        doc = wiring.import_mlflow(ctx, tracking_uri, model)
    if json_out:
        print_json(doc)
        return
    console.print(
        f"{doc['models']} model(s), {doc['versions']} version(s), {doc['aliases']} alias(es) "
        f"({doc['aliases_already_known']} already known): {doc['events']} events",
        highlight=False,
    )
    console.print(doc["note"], highlight=False)
