"""`keel lineage export --openlineage TARGET`: Keel's history as OpenLineage run events."""

from __future__ import annotations

import time

import typer

from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.container import build

app = typer.Typer(help="Lineage for other tools (OpenLineage).", no_args_is_help=True)


@app.command("export")
@handled
def export(
    openlineage: str = typer.Option(
        ...,
        "--openlineage",
        help="where to send the run events: file:PATH (JSON Lines), stdout, or an http(s) URL "
        "of a Marquez-compatible API (POST /api/v1/lineage)",
    ),
    json_out: bool = typer.Option(False, "--json", help="print a JSON summary"),
) -> None:
    """Send every recorded run (ingest, features, train, evaluate, promote, deploy, failures)
    as OpenLineage START / COMPLETE (or FAIL) events, in the order the log holds them, with
    input and output datasets (artifact IDs), schema facets from the contracts, data-quality
    facets from quarantine counts and feature stats. Live: set KEEL_OPENLINEAGE instead."""
    from keel.consume import trusted_events
    from keel.openlineage import Sink, mapper_for

    started = time.perf_counter()
    keel_events = sent = 0
    with build(create=False) as app:
        rt = app.rt
        sink = Sink(openlineage)
        mapper = mapper_for(rt, rt.settings.project)
        try:
            for event in trusted_events(rt.codec, rt.trust, rt.log.read()):
                keel_events += 1
                for run_event in mapper.events(event):
                    sink.emit(run_event)
                    sent += 1
        finally:
            sink.close()
    seconds = time.perf_counter() - started
    doc = {"keel_events": keel_events, "run_events": sent, "seconds": round(seconds, 3)}
    if json_out:
        print_json(doc)
    elif openlineage != "stdout":
        console.print(
            f"{sent:,} OpenLineage run events from {keel_events:,} Keel events "
            f"in {seconds:.1f} s -> {openlineage}",
            highlight=False,
        )
