"""The port through which the library's Python API records commands: what an application's
composition root provides to `keel.Client` and `keel.step`.

The library answers queries on its own (the read model, the views, the artifact store). A
command (ingest, retrain, a review, a deployment, a step's outputs) is recorded by the service
that owns its event type, so the library cannot run one by itself: the application implements
this protocol and passes it in (`keel.Client(commands=...)`); its own `Client` and `step` do
that for users. The library never looks its application up (decision 0025).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.bootstrap import Runtime
    from keel.events import Event
    from keel.events import generated as g
    from keel.pipeline import Context, InProcessBus
    from keel.project import Project
    from keel.retraining import RetrainOutcome


class Commands(Protocol):
    """What the composition root provides. Each method records through the module that owns
    the event types it produces (and stamps that module's code version)."""

    def bus(self, rt: Runtime, project: Project, actor: str) -> InProcessBus:
        """The embedded bus with the services' handlers subscribed (or none, where services
        run as their own processes)."""
        ...

    def ingest_file(
        self, ctx: Context, family: str, path: Path, at: datetime, period: str | None
    ) -> Any: ...

    def request_retrain(
        self,
        ctx: Context,
        family: str,
        dataset_ids: list[str],
        eval_dataset_id: str,
        at: datetime,
        reason: str | None,
    ) -> RetrainOutcome: ...

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

    def record_drift(
        self,
        ctx: Context,
        window: dict[str, Any],
        drifting: Sequence[Any],
        psi: float,
        ks_pvalue: float,
    ) -> str:
        """The DriftDetected for a serving window (once per window); returns its event ID."""
        ...

    def step_events(self) -> StepEvents:
        """How a step's outputs of the pipeline's own kinds become the services' events."""
        ...


class StepEvents(Protocol):
    """The events a step's pipeline outputs record, built by the services that own them (the
    feature service's FeaturesBuilt, train's ModelTrained and ModelEvaluated); the step passes
    its own code version and identity in the envelope it gives."""

    def features_built(
        self,
        envelope: g.Envelope,
        family: str,
        dataset_ids: tuple[str, ...],
        feature_set_id: str,
        feature_stats_id: str,
        transform: str,
        code_version: str,
        rows: int,
    ) -> Event: ...

    def model_trained(
        self,
        envelope: g.Envelope,
        family: str,
        model_id: str,
        feature_set_ids: tuple[str, ...],
        trainer: str,
        params: dict[str, str],
        code_version: str,
    ) -> Event: ...

    def model_evaluated(
        self,
        envelope: g.Envelope,
        family: str,
        model_id: str,
        eval_report_id: str,
        eval_dataset_id: str,
        metrics: dict[str, float],
    ) -> Event: ...


def no_commands() -> KeelError:
    """The error for a command asked of a client the application did not equip."""
    return KeelError(
        "this keel.Client answers queries only: recording a command runs the services, which "
        "the application provides",
        hint="open the application's Client instead (docs/guides/own-pipeline.md, 'Keel from "
        "Python'), or pass commands= to keel.Client",
    )
