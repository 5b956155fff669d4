"""`keel retrain` (CLI, Python client, demo, schedules): the RetrainRequested a person or a
schedule records. The one module producing that event type, stamped with the code version of
the commands that record it (this package and the library)."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from keel.artifacts.codeversion import code_version
from keel.events import envelope
from keel.events import generated as g
from keel.pipeline import Context
from keel.retraining import RetrainOutcome, outcome, require_dataset

REQUESTER = "cli"  # the identity requests are signed as: a person's command, or a schedule


@cache
def _code_version() -> str:
    return code_version(__package__ or __name__, "keel")


def request_retrain(
    ctx: Context,
    family: str,
    dataset_ids: list[str],
    eval_dataset_id: str,
    at: datetime,
    reason: str | None = None,
) -> RetrainOutcome:
    """Checks that the datasets are ingested datasets of the family (a wrong ID leaves no
    trace), records the request, and on the embedded bus returns what the services did."""
    ctx.project.family(family)
    for role, ids in (("training", dataset_ids), ("held-out", [eval_dataset_id])):
        for aid in ids:
            require_dataset(ctx, family, aid, role)
    req = g.RetrainRequested(
        envelope=envelope(
            "RetrainRequested",
            subject=family,
            service=REQUESTER,
            code_version=_code_version(),
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            occurred_at=at,
        ),
        family=family,
        dataset_ids=tuple(sorted(set(dataset_ids))),
        eval_dataset_id=eval_dataset_id,
        reason=reason,
    )
    ctx.publish([req])
    if not ctx.rt.settings.inline_services:
        return RetrainOutcome(req.envelope.event_id)  # the services' processes take it on
    return outcome(ctx, req)
