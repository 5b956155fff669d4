"""DriftDetected: a serving window's features drifted beyond the family's thresholds from the
serving model's training features (keel.skew judges; `keel audit skew` and keel.Client.skew ask).

The one module producing that event type. It is recorded by whoever asked (the identity
`cli`, as before: a person's query found it), stamped with the serve service's code version,
whose statistics it judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from keel.artifacts.codeversion import code_version
from keel.events import envelope
from keel.events import generated as g
from keel.pipeline import Context

RECORDER = "cli"  # the identity drift is signed as (keel.signing.DEFAULT_ROLES)


@cache
def _code_version() -> str:
    return code_version(__package__ or __name__, "keel")


def record_drift(
    ctx: Context, window: dict[str, Any], drifting: Sequence[Any], psi: float, ks_pvalue: float
) -> str:
    """Records the drift of `window` (a ServingStatsRecorded's view) once: an earlier record
    caused by the same window is returned instead. Returns the DriftDetected's event ID."""
    stats_id = window["event_id"]
    earlier = ctx.read.caused_ids(stats_id, "DriftDetected")
    if earlier:
        return str(earlier[0])
    event = g.DriftDetected(
        envelope=envelope(
            "DriftDetected",
            subject=f"{window['family']}/{window['env']}",
            service=RECORDER,
            code_version=_code_version(),
            actor=ctx.actor,
            correlation_id=ctx.correlation_id,
            causation_id=stats_id,
        ),
        family=window["family"],
        env=window["env"],
        model_id=window["model_id"],
        stats_event_id=stats_id,
        psi_threshold=psi,
        ks_pvalue_threshold=ks_pvalue,
        # v2 names each feature's test (KS, or chi-square for a binary or discrete feature);
        # the ks_* fields keep their v1 names and hold that test's figures
        features=tuple(
            g.FeatureDrift(
                feature=d.feature,
                psi=d.psi,
                ks_statistic=d.statistic,
                ks_pvalue=d.pvalue,
                kind=d.kind,
                test=d.test,
            )
            for d in drifting
        ),
    )
    ctx.publish([event])
    return event.envelope.event_id
