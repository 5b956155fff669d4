"""The composition root: one handler table per service, used by the embedded bus, by
`keel service run NAME` and by the commands, and the servers the commands start. The `keel`
library never finds this module: the root imports the library and hands it what it needs
(decision 0025)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from keel.errors import KeelError
from keel.extras import need
from keel.pipeline import Context, Handler
from keel.project import Project
from keel_services.deploy import handlers as deploy
from keel_services.entrypoints.commands import (
    deploy_chosen,
    evaluate,
    ingest_file,
    review,
    rollback,
)
from keel_services.entrypoints.container import App, build
from keel_services.feature import handlers as feature
from keel_services.promote import handlers as promote
from keel_services.train import handlers as train

# The order a retrain flows in: the embedded bus offers each event to the services in it.
HANDLERS = {
    "feature": feature.HANDLERS,
    "train": train.HANDLERS,
    "promote": promote.HANDLERS,
    "deploy": deploy.HANDLERS,
}

# Who each event-driven service is as a producer (identity, code version): the runner stamps
# what it quarantines for a service with that service's own code version.
PRODUCERS = {
    "feature": feature.SERVICE,
    "train": train.SERVICE,
    "promote": promote.SERVICE,
    "deploy": deploy.SERVICE,
}

__all__ = [
    "HANDLERS",
    "PRODUCERS",
    "App",
    "build",
    "deploy_chosen",
    "evaluate",
    "handlers",
    "import_mlflow",
    "ingest_file",
    "review",
    "rollback",
    "serve_audit",
    "serve_ingest",
    "serve_mlflow_bridge",
    "serve_model",
    "serve_witness",
]


def handlers(names: tuple[str, ...] | None = None) -> dict[str, dict[str, Handler]]:
    """Each service's handler table (all services, or those named)."""
    unknown = sorted(set(names or ()) - set(HANDLERS))
    if unknown:
        raise KeelError(
            f"no event-driven service named {', '.join(map(repr, unknown))}",
            hint=f"services reacting to events: {', '.join(HANDLERS)}",
        )
    return {name: dict(h) for name, h in HANDLERS.items() if names is None or name in names}


def serve_ingest(ctx: Context, host: str, port: int, token: str | None) -> None:
    need("serve", "fastapi", "uvicorn")
    import uvicorn

    from keel_services.ingest.http import create_app

    uvicorn.run(create_app(ctx, token), host=host, port=port, log_level="warning")


def serve_mlflow_bridge(ctx: Context, host: str, port: int, secret: str) -> None:
    need("mlflow-bridge", "fastapi", "uvicorn", "yaml")  # refused at start, not per delivery
    import uvicorn

    from keel_services.mlflow_bridge.bridge import Bridge
    from keel_services.mlflow_bridge.domain import Names
    from keel_services.mlflow_bridge.http import create_app
    from keel_services.mlflow_bridge.sources import sources_of

    names = Names(ctx.project.mlflow.families, ctx.project.mlflow.environments)
    app = create_app(Bridge(ctx, secret, names, sources=sources_of(ctx.project)))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def import_mlflow(ctx: Context, tracking_uri: str, model: str | None) -> dict[str, Any]:
    need("mlflow-bridge", "yaml")  # versions' MLmodel files are read as they are recorded
    from keel_services.mlflow_bridge.domain import Names
    from keel_services.mlflow_bridge.importer import import_registry

    names = Names(ctx.project.mlflow.families, ctx.project.mlflow.environments)
    return import_registry(ctx, tracking_uri, model, names)


def serve_witness(state: Path, host: str, port: int) -> None:
    need("serve", "fastapi", "uvicorn")
    import uvicorn

    from keel_services.audit.witness_http import create_app

    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")


def serve_audit(app: App, host: str, port: int, token: str | None) -> None:
    need("serve", "fastapi", "uvicorn", "jinja2")
    import uvicorn

    from keel_services.audit.http import create_app

    # the factory gets the container's pieces (a service may not import the root)
    uvicorn.run(
        create_app(app.rt, token, commands=app.commands),
        host=host,
        port=port,
        log_level="warning",
        # an open console tail (server-sent events) must not hold a SIGTERM for minutes
        timeout_graceful_shutdown=5,
    )


def serve_model(
    app: App,
    project: Project,
    family: str,
    env: str,
    host: str,
    port: int,
    token: str | None,
    say: Callable[[str], None],
) -> None:
    need("serve", "fastapi", "uvicorn")
    import uvicorn

    from keel_services.serve.app import Server, create_app

    server = Server(app.rt, project, family, env)
    server.follow()
    current = server.current.model_id[:12] if server.current else "none yet"
    say(f"serving {family}/{env} on http://{host}:{port} (model {current})")
    try:
        uvicorn.run(create_app(server, token), host=host, port=port, log_level="warning")
    finally:
        server.stop()
