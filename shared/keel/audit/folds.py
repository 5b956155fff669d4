"""Pure folds of the event stream into the audit state: `evolve(state, event) -> state`.

No I/O. The state is what the queries read: artifacts and their parents, datasets, feature sets,
models and their evaluations, every promotion decision, and serving intervals per environment.
Events already applied (same event_id) are skipped, so replaying a duplicate is harmless.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatch
from typing import Any

from keel.events import generated as g


@dataclass
class Interval:
    """One model serving one environment from `start` until `end` (None: still serving)."""

    family: str
    env: str
    model_id: str
    start: datetime
    end: datetime | None
    deployment_event_id: str
    manifest_id: str
    eval_report_id: str | None
    promotion_event_id: str | None
    kind: str


@dataclass
class ArtifactNode:
    id: str
    kind: str
    parents: tuple[str, ...]
    code_version: str
    params: dict[str, Any]
    recorded_at: datetime
    digest: str = ""  # sha256 of the bytes, as the signed ArtifactRecorded states it


@dataclass
class AuditState:
    seen: set[str] = field(default_factory=set)
    applied: int = 0
    artifacts: dict[str, ArtifactNode] = field(default_factory=dict)
    datasets: dict[str, g.DatasetIngested] = field(default_factory=dict)
    feature_sets: dict[str, g.FeaturesBuilt] = field(default_factory=dict)
    models: dict[str, g.ModelTrained] = field(default_factory=dict)
    evaluations: dict[str, list[g.ModelEvaluated]] = field(default_factory=dict)
    decisions: list[g.ModelPromoted | g.PromotionRejected | g.PromotionPending] = field(
        default_factory=list
    )
    promotions: dict[str, g.ModelPromoted] = field(default_factory=dict)  # by event_id
    pending: dict[str, g.PromotionPending] = field(default_factory=dict)  # by event_id
    reviews: dict[str, list[g.PromotionReviewed]] = field(default_factory=dict)  # by pending
    concluded: set[str] = field(default_factory=set)  # pending IDs promoted or declined
    serving: dict[tuple[str, str], list[Interval]] = field(default_factory=dict)
    quarantined: int = 0
    reconciliations: list[g.SchemaReconciled | g.SchemaReconciliationFailed] = field(
        default_factory=list
    )
    # a retrain as a flow of events: the request, and what each step recorded because of it
    requests: dict[str, g.RetrainRequested] = field(default_factory=dict)  # by event_id
    caused: dict[str, list[Any]] = field(default_factory=dict)  # causation_id -> events

    # -- lookups used by handlers and queries ----------------------------------------------
    def serving_now(self, family: str, env: str) -> Interval | None:
        intervals = self.serving.get((family, env))
        return intervals[-1] if intervals and intervals[-1].end is None else None

    def serving_at(self, family: str, env: str, at: datetime) -> Interval | None:
        intervals = self.serving.get((family, env), [])
        i = bisect_right([iv.start for iv in intervals], at) - 1
        if i < 0:
            return None
        iv = intervals[i]
        return iv if iv.end is None or at < iv.end else None

    def latest_eval(self, model_id: str) -> g.ModelEvaluated | None:
        evals = self.evaluations.get(model_id)
        return evals[-1] if evals else None

    def open_pending(self, family: str, env: str) -> list[g.PromotionPending]:
        """Pending promotions of `env` still waiting for approvals, oldest first."""
        return [
            p
            for eid, p in self.pending.items()
            if eid not in self.concluded and p.family == family and p.env == env
        ]

    def approvers(self, pending_event_id: str) -> list[str]:
        """The distinct people who approved a pending promotion, in order."""
        out: list[str] = []
        for r in self.reviews.get(pending_event_id, []):
            if r.verdict == "approved" and r.envelope.actor not in out:
                out.append(r.envelope.actor)
        return out

    def caused_by(self, event_id: str, event_type: str) -> list[Any]:
        """Events of `event_type` recorded because of `event_id` (their causation), in order."""
        return [e for e in self.caused.get(event_id, []) if event_type == e.EVENT_TYPE]

    def request_features(self, request_id: str) -> dict[str, g.FeaturesBuilt]:
        """The feature sets built for a retrain request, by role ("training", "held-out")."""
        req = self.requests.get(request_id)
        if req is None:
            return {}
        out: dict[str, g.FeaturesBuilt] = {}
        for fb in self.caused_by(request_id, "FeaturesBuilt"):
            if tuple(fb.dataset_ids) == tuple(sorted(set(req.dataset_ids))):
                out["training"] = fb
            if tuple(fb.dataset_ids) == (req.eval_dataset_id,):
                out["held-out"] = fb
        return out

    def promotion_of(self, model_id: str, env: str) -> g.ModelPromoted | None:
        for d in reversed(self.decisions):
            if isinstance(d, g.ModelPromoted) and d.model_id == model_id and d.env == env:
                return d
        return None


def evolve(state: AuditState, event: Any) -> AuditState:
    """Apply one event (once, by event_id)."""
    eid = event.envelope.event_id
    if eid in state.seen:
        return state
    state.seen.add(eid)
    state.applied += 1
    if event.envelope.causation_id:
        state.caused.setdefault(event.envelope.causation_id, []).append(event)
    _apply(event, state)
    return state


def fold(events: Any, state: AuditState | None = None) -> AuditState:
    s = state or AuditState()
    for e in events:
        evolve(s, e)
    return s


@singledispatch
def _apply(event: Any, state: AuditState) -> None:
    """Event types without a view (e.g. EventQuarantined) change nothing."""


@_apply.register
def _(e: g.ArtifactRecorded, s: AuditState) -> None:
    s.artifacts[e.artifact_id] = ArtifactNode(
        e.artifact_id,
        e.kind,
        e.parents,
        e.code_version,
        json.loads(e.params_json),
        e.envelope.occurred_at,
        e.digest,
    )


@_apply.register
def _(e: g.DatasetIngested, s: AuditState) -> None:
    s.datasets[e.dataset_id] = e


@_apply.register
def _(e: g.RecordQuarantined, s: AuditState) -> None:
    s.quarantined += 1


@_apply.register
def _(e: g.FeaturesBuilt, s: AuditState) -> None:
    s.feature_sets[e.feature_set_id] = e


@_apply.register
def _(e: g.ModelTrained, s: AuditState) -> None:
    s.models[e.model_id] = e


@_apply.register
def _(e: g.ModelEvaluated, s: AuditState) -> None:
    s.evaluations.setdefault(e.model_id, []).append(e)


@_apply.register
def _(e: g.ModelPromoted, s: AuditState) -> None:
    s.decisions.append(e)
    s.promotions[e.envelope.event_id] = e
    if e.pending_event_id:
        s.concluded.add(e.pending_event_id)


@_apply.register
def _(e: g.PromotionRejected, s: AuditState) -> None:
    s.decisions.append(e)


@_apply.register
def _(e: g.PromotionPending, s: AuditState) -> None:
    s.decisions.append(e)
    s.pending[e.envelope.event_id] = e


@_apply.register
def _(e: g.PromotionReviewed, s: AuditState) -> None:
    s.reviews.setdefault(e.pending_event_id, []).append(e)
    if e.verdict == "rejected":
        s.concluded.add(e.pending_event_id)


@_apply.register
def _(e: g.SchemaReconciled, s: AuditState) -> None:
    s.reconciliations.append(e)


@_apply.register
def _(e: g.SchemaReconciliationFailed, s: AuditState) -> None:
    s.reconciliations.append(e)


@_apply.register
def _(e: g.RetrainRequested, s: AuditState) -> None:
    s.requests[e.envelope.event_id] = e


@_apply.register
def _(e: g.ModelDeployed, s: AuditState) -> None:
    at = e.envelope.occurred_at
    intervals = s.serving.setdefault((e.family, e.env), [])
    if intervals and intervals[-1].end is None:
        intervals[-1].end = at
    intervals.append(
        Interval(
            e.family,
            e.env,
            e.model_id,
            at,
            None,
            e.envelope.event_id,
            e.manifest_id,
            e.eval_report_id,
            e.promotion_event_id,
            e.kind,
        )
    )
    if len(intervals) > 1 and intervals[-2].start > at:
        # A backdated deployment: keep intervals ordered by business time and re-link the ends.
        intervals.sort(key=lambda iv: iv.start)
        for prev, nxt in itertools.pairwise(intervals):
            prev.end = nxt.start
        intervals[-1].end = None
