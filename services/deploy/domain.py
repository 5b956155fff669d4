"""Deployment decisions, pure: the manifest's content and which model a rollback goes back to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keel.audit.folds import Interval
from keel.errors import KeelError


def manifest(
    family: str,
    env: str,
    model_id: str,
    eval_report_id: str | None,
    previous_model_id: str | None,
    at: datetime,
    kind: str,
) -> dict[str, Any]:
    """What an environment serves, and since when. Event IDs stay out: the bytes are a pure
    function of the decision, so re-running the story gives the same manifest."""
    return {
        "family": family,
        "env": env,
        "model_id": model_id,
        "eval_report_id": eval_report_id,
        "previous_model_id": previous_model_id,
        "deployed_at": at.isoformat(),
        "kind": kind,
    }


def rollback_target(intervals: list[Interval], to: str | None) -> Interval:
    """The earlier interval to return to: the one before the current model, or the given model."""
    if not intervals or intervals[-1].end is not None:
        raise KeelError("nothing is serving there, so there is nothing to roll back")
    current = intervals[-1]
    earlier = [iv for iv in intervals[:-1] if iv.model_id != current.model_id]
    if to is not None:
        matches = [iv for iv in earlier if iv.model_id.startswith(to)]
        if not matches:
            raise KeelError(
                f"{to} never served here before the current model",
                hint="roll back only to a model that served this environment before; "
                "see `keel audit tail --topic deployments`",
            )
        return matches[-1]
    if not earlier:
        raise KeelError("the current model is the first one to serve here: no earlier model")
    return earlier[-1]
