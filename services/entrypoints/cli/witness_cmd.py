"""`keel audit witness serve`: run a witness (services/audit/witness_http.py) for other homes."""

from __future__ import annotations

from pathlib import Path

import typer

from keel_services.entrypoints.cli.common import handled

app = typer.Typer(help="Witnesses: keep checkpoints where the log's keeper cannot rewrite them.")


def serve(
    state: Path = typer.Option(
        ..., "--dir", help="where the witness keeps what it holds (and its own key)"
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8790, "--port"),
) -> None:
    """Serve a witness over HTTP: it cosigns a checkpoint only after a consistency proof from
    the one it holds, and keeps both notes when they conflict (equivocation)."""
    from keel_services.entrypoints import wiring

    state.mkdir(parents=True, exist_ok=True)
    wiring.serve_witness(state, host, port)


app.command("serve")(handled(serve))
