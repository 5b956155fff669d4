"""Keel from Python with the services: the library's `keel.Client` and `keel.step`, equipped
with the composition root's commands (keel.commands.Commands).

    from keel_services import Client, step

    with Client() as k:                 # queries, and commands that run the services
        k.approve(model_id, "prod", reason="eval reviewed")

The library answers queries alone (`keel.Client()`); a command is recorded by the service that
owns its event type, which only the application can reach (decision 0025). Services are
imported when a command first needs them, so a query through this client starts as fast as
through the library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import client as _client
from keel import steps as _steps
from keel.settings import Settings

if TYPE_CHECKING:
    from keel.bootstrap import Runtime
    from keel.commands import StepEvents
    from keel.events import Event
    from keel.pipeline import Context, InProcessBus
    from keel.project import Project
    from keel.retraining import RetrainOutcome
    from keel.views.port import ViewStore


class RootCommands:
    """keel.commands.Commands, implemented by the services' own modules."""

    def bus(self, rt: Runtime, project: Project, actor: str) -> InProcessBus:
        from keel_services.entrypoints.bus import build_bus

        return build_bus(rt, project, actor)

    def ingest_file(
        self, ctx: Context, family: str, path: Path, at: datetime, period: str | None
    ) -> Any:
        from keel_services.entrypoints.commands import ingest_file

        return ingest_file(ctx, family, path, at, period)

    def request_retrain(
        self,
        ctx: Context,
        family: str,
        dataset_ids: list[str],
        eval_dataset_id: str,
        at: datetime,
        reason: str | None,
    ) -> RetrainOutcome:
        from keel_services.entrypoints.retrain import request_retrain

        return request_retrain(ctx, family, dataset_ids, eval_dataset_id, at, reason)

    def review(
        self,
        ctx: Context,
        family: str,
        model_id: str,
        env: str,
        verdict: str,
        reason: str,
        at: datetime,
    ) -> Event:
        from keel_services.entrypoints.commands import review

        return review(ctx, family, model_id, env, verdict, reason, at)

    def evaluate(
        self, ctx: Context, family: str, model_id: str, env: str, at: datetime
    ) -> list[Event]:
        from keel_services.entrypoints.commands import evaluate

        return evaluate(ctx, family, model_id, env, at)

    def deploy_chosen(
        self,
        ctx: Context,
        family: str,
        model_id: str,
        env: str,
        reason: str,
        at: datetime,
        override: bool = False,
    ) -> Event:
        from keel_services.entrypoints.commands import deploy_chosen

        return deploy_chosen(ctx, family, model_id, env, reason, at, override)

    def rollback(
        self,
        ctx: Context,
        family: str,
        env: str,
        to: str | None,
        at: datetime,
        reason: str | None = None,
    ) -> Any:
        from keel_services.entrypoints.commands import rollback

        return rollback(ctx, family, env, to, at, reason)

    def record_drift(
        self,
        ctx: Context,
        window: dict[str, Any],
        drifting: Sequence[Any],
        psi: float,
        ks_pvalue: float,
    ) -> str:
        from keel_services.serve.drift import record_drift

        return record_drift(ctx, window, drifting, psi, ks_pvalue)

    def step_events(self) -> StepEvents:
        from keel_services.entrypoints.step_events import STEP_EVENTS

        return STEP_EVENTS


COMMANDS = RootCommands()


class Client(_client.Client):
    """`keel.Client` with the services' commands: ingest, retrain, reviews, deployments."""

    def __init__(self, settings: Settings | None = None, *, views: ViewStore | None = None) -> None:
        super().__init__(settings, views=views, commands=COMMANDS)

    @classmethod
    def over(
        cls, rt: Runtime, views: ViewStore | None = None, commands: Any = None
    ) -> _client.Client:
        """On an open runtime (an HTTP API's), with the services' commands."""
        return _client.Client.over(rt, views, commands or COMMANDS)


class step(_steps.step):
    """`keel.step` recording through the services (FeaturesBuilt by the feature service's
    code, ModelTrained and ModelEvaluated by train's)."""

    @staticmethod
    def open_client() -> Any:
        return Client()


__all__ = ["COMMANDS", "Client", "RootCommands", "step"]
