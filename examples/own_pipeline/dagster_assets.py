"""The same steps as Dagster assets: each asset body is a Keel step (train_steps.py), so a
`dagster materialize` (or `dagster.materialize([...])` in-process) records the run in Keel."""

from __future__ import annotations

from typing import Any

import dagster as dg

import keel_services
from examples.own_pipeline import train_steps as steps


class KeelResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Where Keel's home and project are (the environment's KEEL_* by default)."""

    training_datasets: list[str]
    holdout_dataset: str
    at: str = ""

    def client(self) -> Any:
        return keel_services.Client()


@dg.asset
def training_features(keel_run: KeelResource) -> str:
    with keel_run.client() as c:
        return steps.features_step(c, keel_run.training_datasets, keel_run.at or None)


@dg.asset
def holdout_features(keel_run: KeelResource) -> str:
    with keel_run.client() as c:
        return steps.features_step(c, [keel_run.holdout_dataset], keel_run.at or None)


@dg.asset
def model(keel_run: KeelResource, training_features: str) -> str:
    with keel_run.client() as c:
        return steps.train_step(c, training_features, at=keel_run.at or None)


@dg.asset
def evaluation(keel_run: KeelResource, model: str, holdout_features: str) -> str:
    with keel_run.client() as c:  # the promotion gate and deployment follow this record
        return steps.evaluate_step(c, model, holdout_features, keel_run.at or None)


ASSETS = [training_features, holdout_features, model, evaluation]
