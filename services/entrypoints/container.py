"""The composition root's container: `build(settings)` opens the runtime once and holds what
every entrypoint works with, so the CLI's commands, the HTTP apps' factories, the service
runner and the demo receive one `App` instead of each calling `keel.bootstrap()` and wiring
the rest themselves (issue 35, decision 0025).

    with build(settings, create=False) as app:
        app.reads.serving(family, env, at)       # the one read surface (keel.audit.reads)
        app.projector(checkpoints="none").run()  # keel.audit.projectors.projector_for
        with app.pipeline() as ctx: ...          # the embedded bus with the services subscribed

Light to import (the lazy CLI imports it for every command that opens a home): the services,
the bus and the projector are imported when first asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from keel.audit.reads import Reads
from keel.bootstrap import Runtime, bootstrap
from keel.settings import Settings

if TYPE_CHECKING:
    from keel.audit.projector import Projector
    from keel.client import Client
    from keel.pipeline import Context, InProcessBus
    from keel.project import Project
    from keel_services.entrypoints.client import RootCommands


class App:
    """The runtime (log, views, artifacts, codec, signer), opened on first use, and what is
    built on it. A command that fails before it needs the runtime (an unknown project, a
    refused option) opens nothing and makes no KEEL_HOME, as before the container."""

    def __init__(self, settings: Settings | None = None, *, create: bool = True) -> None:
        self.settings = settings or Settings()
        self.create = create
        self._rt: Runtime | None = None
        self._reads: Reads | None = None

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            # the one bootstrap() of the application (tests/unit/test_architecture.py)
            self._rt = bootstrap(self.settings, create=self.create)
        return self._rt

    @property
    def reads(self) -> Reads:
        """Every query over the runtime's views (keel.audit.reads.Reads)."""
        if self._reads is None:
            self._reads = Reads(self.rt.views)
        return self._reads

    @property
    def commands(self) -> RootCommands:
        """The services' commands (keel.commands.Commands), imported on first use."""
        from keel_services.entrypoints.client import COMMANDS

        return COMMANDS

    def project(self) -> Project:
        """The project (keel.toml) the settings name."""
        from keel.project import load_project

        return load_project(self.settings.project)

    def projector(self, **options: Any) -> Projector:
        """A projector over the runtime (keel.audit.projectors.projector_for's options)."""
        from keel.audit.projectors import projector_for

        return projector_for(self.rt, **options)

    def bus(self, project: Project | None = None, actor: str | None = None) -> InProcessBus:
        """The embedded bus with every service's handlers subscribed (entrypoints.bus)."""
        from keel_services.entrypoints.bus import build_bus

        return build_bus(self.rt, project or self.project(), actor or self.settings.who())

    def client(self, views: Any = None, *, acting: bool = False) -> Client:
        """keel.Client on this runtime, answering from `views` if given; acting: with the
        services' commands (keel_services.Client), the project checked before the runtime
        opens (a wrong keel.toml makes no KEEL_HOME). Closing the app closes its runtime."""
        if not acting:
            from keel.client import Client as Queries  # queries import no service

            return Queries.over(self.rt, views)
        from keel_services.entrypoints.client import Client as Acting

        self.project()
        return Acting.over(self.rt, views, self.commands)

    @contextmanager
    def pipeline(self) -> Iterator[Context]:
        """A command's pipeline context (keel.Client.pipeline: the bus, a correlation ID)."""
        with self.client(acting=True).pipeline() as ctx:
            yield ctx

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()
            self._rt = None
            self._reads = None

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build(settings: Settings | None = None, *, create: bool = True) -> App:
    """The application's container (the one place it opens a runtime, keel.bootstrap):
    create=False (the read-only commands) refuses a missing KEEL_HOME instead of making one."""
    return App(settings, create=create)


@contextmanager
def open_client(
    settings: Settings | None = None, *, create: bool = False, acting: bool = False
) -> Iterator[Client]:
    """A command's client on the container (see App.client), closed with it."""
    with build(settings, create=create) as app:
        yield app.client(acting=acting)


__all__ = ["App", "build", "open_client"]
