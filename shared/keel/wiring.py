"""The port to the composition root: which handlers each service runs, and the commands and
HTTP entry points that act through the services' code.

The `keel` library imports nothing from `services`: the composition root registers itself
under the `keel.wiring` entry-point group (pyproject.toml) and is found here by name, the way
pytest finds its plugins. Another distribution could register a different set of services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.bootstrap import Runtime
    from keel.events import Event
    from keel.pipeline import Context, Handler
    from keel.project import Project

GROUP = "keel.wiring"


class Services(Protocol):
    """What a composition root provides (a module satisfies it)."""

    # service name -> {event type: handler}; the dict order is the embedded dispatch order
    HANDLERS: Mapping[str, Mapping[str, Handler]]

    def ingest_file(
        self, ctx: Context, family: str, path: Path, at: datetime, period: str | None
    ) -> Any: ...

    def review(
        self,
        ctx: Context,
        family: str,
        model_id: str,
        env: str,
        verdict: str,
        reason: str,
        at: datetime,
    ) -> Event: ...

    def evaluate(
        self, ctx: Context, family: str, model_id: str, env: str, at: datetime
    ) -> list[Event]: ...

    def deploy_chosen(
        self,
        ctx: Context,
        family: str,
        model_id: str,
        env: str,
        reason: str,
        at: datetime,
        override: bool = False,
    ) -> Event: ...

    def rollback(
        self,
        ctx: Context,
        family: str,
        env: str,
        to: str | None,
        at: datetime,
        reason: str | None = None,
    ) -> Any: ...

    def serve_ingest(self, ctx: Context, host: str, port: int, token: str | None) -> None: ...

    def serve_audit(self, rt: Runtime, host: str, port: int, token: str | None) -> None: ...

    def serve_witness(self, state: Path, host: str, port: int) -> None: ...

    def serve_mlflow_bridge(self, ctx: Context, host: str, port: int, secret: str) -> None: ...

    def import_mlflow(self, ctx: Context, tracking_uri: str, model: str | None) -> Any: ...

    def serve_model(
        self,
        rt: Runtime,
        project: Project,
        family: str,
        env: str,
        host: str,
        port: int,
        token: str | None,
        say: Callable[[str], None],
    ) -> None: ...


@cache
def services() -> Services:
    """The installed composition root (the `services` package of this repository)."""
    found = list(entry_points(group=GROUP))
    if not found:
        raise KeelError(
            "no Keel services are installed (nothing registers the 'keel.wiring' entry point)",
            hint="install the project with its services: `make install` (pip install -e .)",
        )
    if len(found) > 1:
        names = ", ".join(sorted(f"{ep.name} = {ep.value}" for ep in found))
        raise KeelError(
            f"more than one composition root is installed: {names}",
            hint="uninstall all but one distribution that registers 'keel.wiring'",
        )
    return cast(Services, found[0].load())


def handlers(names: tuple[str, ...] | None = None) -> dict[str, dict[str, Handler]]:
    """Each service's handler table (all services, or those named)."""
    table = services().HANDLERS
    unknown = sorted(set(names or ()) - set(table))
    if unknown:
        raise KeelError(
            f"no event-driven service named {', '.join(map(repr, unknown))}",
            hint=f"services reacting to events: {', '.join(table)}",
        )
    return {name: dict(h) for name, h in table.items() if names is None or name in names}
