"""What a deployment cites must be what it claims: the limit of a stolen service key.

The deploy service's key may write `ModelDeployed`; whoever steals it can sign any deployment.
Signatures cannot tell a forged one from a real one, but the trail can: a `promotion`-kind
deployment is the deploy service's reaction to a `ModelPromoted`, so it must cite one (by event
ID) that the log holds with a valid signature, of the same family, model and environment, at
the same business time (deploy acts at the promotion's time). Any deployment that cites a
promotion (a rollback cites the one that first brought its model) must cite one of its own
model and environment. A thief can still deploy a model by rollback or override, which name
themselves as such in every answer (README, "Trust model"). Pure: the scan collected the events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from keel.audit.verify import Problem
from keel.events import generated as g

_TODO = (
    "treat the deployment as forged: the deploy key may be stolen; retire it (`keel keys "
    "create deploy`) and roll the environment back to a model a promotion chose"
)


def check(
    promotions: Mapping[str, g.ModelPromoted],
    citing: Sequence[tuple[str, g.ModelDeployed]],
    problems: list[Problem],
) -> None:
    """promotions: verified ModelPromoted by event ID; citing: (position, ModelDeployed) of
    every verified deployment that is promotion-kind or cites a promotion."""
    for where, dep in citing:
        problem = _problem(dep, promotions)
        if problem is not None:
            kind, detail = problem
            what = f"ModelDeployed {dep.envelope.event_id} ({dep.kind}, {dep.family}/{dep.env}"
            problems.append(
                Problem("citation", kind, where, f"{what}, model {dep.model_id}): {detail}", _TODO)
            )


def _problem(
    dep: g.ModelDeployed, promotions: Mapping[str, g.ModelPromoted]
) -> tuple[str, str] | None:
    cited = dep.promotion_event_id
    if not cited:
        return "uncited-promotion", "a promotion-kind deployment cites no promotion"
    promo = promotions.get(cited)
    if promo is None:
        return "unknown-promotion", f"cites {cited}, which is no validly signed ModelPromoted"
    if (promo.family, promo.model_id, promo.env) != (dep.family, dep.model_id, dep.env):
        return (
            "mismatched-promotion",
            f"cites {cited}, a promotion of model {promo.model_id} to {promo.family}/{promo.env}",
        )
    if dep.kind == "promotion" and dep.envelope.occurred_at != promo.envelope.occurred_at:
        return (
            "mismatched-promotion",
            f"deployed at {dep.envelope.occurred_at.isoformat()}, but the promotion it cites "
            f"({cited}) happened at {promo.envelope.occurred_at.isoformat()}",
        )
    return None
