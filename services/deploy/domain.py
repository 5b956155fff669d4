"""Deployment decisions, pure: the manifest's content and which model a rollback goes back to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from keel.audit.reads import Interval
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


class Target(NamedTuple):
    model_id: str
    eval_report_id: str | None
    promotion_event_id: str | None


def rollback_target(
    intervals: list[Interval], to: str | None, promoted: Sequence[Target] = ()
) -> Target:
    """The model to return to: the one that served before the current model, or the given
    model (ID or prefix) if it served here before or ever passed this environment's gate
    (`promoted`, oldest first)."""
    if not intervals or intervals[-1].end is not None:
        raise KeelError("nothing is serving there, so there is nothing to roll back")
    current = intervals[-1]
    earlier = [
        Target(iv.model_id, iv.eval_report_id, iv.promotion_event_id)
        for iv in intervals[:-1]
        if iv.model_id != current.model_id
    ]
    if to is not None:
        passed = [t for t in promoted if t.model_id != current.model_id]
        matches = [t for t in [*passed, *earlier] if t.model_id.startswith(to)]
        if len({t.model_id for t in matches}) > 1:
            raise KeelError(f"{to} matches more than one model", hint="give more of the ID")
        if not matches and current.model_id.startswith(to):
            raise KeelError(
                f"{to} is the model serving there now: a rollback returns to another one",
                hint="name a model that served there before (`keel deployments list --env ENV`), "
                "or leave out --to to return to the previous one",
            )
        if not matches:
            raise KeelError(
                f"{to} never served here and never passed this environment's gate",
                hint="roll back to a model that served here or was promoted here; to deploy "
                "another model use `keel deploy MODEL --env ENV --reason ...`",
            )
        return matches[-1]
    if not earlier:
        raise KeelError("the current model is the first one to serve here: no earlier model")
    return earlier[-1]
