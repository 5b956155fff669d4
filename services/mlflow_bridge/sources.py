"""What the bridge may read beyond a delivery, built from keel.toml's [mlflow]: the tracking
server (run metrics, model files) and the gates (their contracts relative to the project)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from keel.contracts import Contract, load_contract
from keel.project import MlflowGate, Project
from keel_services.mlflow_bridge.tracking import Tracking, Unreadable


@dataclass(frozen=True)
class Sources:
    """What the bridge may read beyond a delivery: the tracking server (run metrics, model
    files), the gates of keel.toml's [mlflow] and their families' contracts."""

    tracking: Tracking | None = None
    gates: Mapping[str, MlflowGate] = field(default_factory=dict)
    contracts: Mapping[str, Contract] = field(default_factory=dict)


def sources_of(project: Project) -> Sources:
    """The bridge's Sources from keel.toml's [mlflow] (no connection is made here). The gates'
    contracts are read now: a wrong path stops the bridge at start with the contract's error,
    rather than failing every delivery MLflow then retries."""
    uri = project.mlflow.tracking_uri
    contracts = {
        family: load_contract(project.root / gate.contract)
        for family, gate in project.mlflow.gates.items()
        if gate.contract is not None
    }
    return Sources(Tracking(uri) if uri else None, project.mlflow.gates, contracts)


def run_metrics(
    tracking: Tracking | None, name: str, version: str
) -> tuple[dict[str, float], str | None, str | None]:
    """(metrics, run ID, why none) of a version's MLflow run, read now."""
    if tracking is None:
        return {}, None, "no [mlflow] tracking_uri in keel.toml to read the run from"
    try:
        run_id = tracking.run_of(name, version)
        if run_id is None:
            return {}, None, f"{name} version {version} names no run"
        return tracking.run_metrics(run_id), run_id, None
    except Unreadable as exc:
        return {}, None, str(exc)
