"""The one read model: what services, commands and audit queries look up, read from the audit
views (keel.audit.projection) that the projector keeps up to date incrementally.

Nothing here folds the log: every lookup is a document or an index read, so a command or a
service that starts on a log of a million events reads what it needs and nothing more. The
views are the embedded SQLite file or Redis; the projector's tracking positions say how far
they reach (`keel.pipeline` brings them to the log's end before a command reads them, and
`keel service run` waits for them to pass the event it is about to act on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.audit import index_order, keys
from keel.views.port import ViewStore

if TYPE_CHECKING:
    # Imported where an event is built: the generated event classes cost ~40 ms (pydantic),
    # and the queries operators run in loops (keel.audit.view_queries) only read documents.
    from keel.events import Event
    from keel.events import generated as g

# A deployment of this kind says nothing serves from its time on (an MLflow alias deleted,
# keel_services.mlflow_bridge): it ends the interval before it and begins none.
WITHDRAWN = "withdrawn"
SCAN = 10_000  # page size for the rare full walks (rollback targets, a family's datasets)


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


def _event(doc: dict[str, Any] | None) -> Any:
    if doc is None:
        return None
    record = dict(doc["event"])
    env = dict(record["envelope"])
    env["occurred_at"] = datetime.fromisoformat(env["occurred_at"])  # stored as ISO 8601
    record["envelope"] = env
    from keel.events import EVENT_TYPES

    return EVENT_TYPES[doc["type"]].from_avro(record)


def _interval(doc: dict[str, Any], end: datetime | None) -> Interval:
    return Interval(
        doc["family"],
        doc["env"],
        doc["model_id"],
        datetime.fromisoformat(doc["since"]),
        end,
        doc["event_id"],
        doc["manifest_id"],
        doc.get("eval_report_id"),
        doc.get("promotion_event_id"),
        doc.get("kind", "promotion"),
    )


class ReadModel:
    def __init__(self, views: ViewStore) -> None:
        self.views = views

    # -- events by ID and by cause ---------------------------------------------------------
    def event(self, event_id: str) -> Any:
        """The recorded event (for the types in projection.EVENT_DOCS), or None."""
        return _event(self.views.get(keys.event(event_id)))

    def caused(self, event_id: str) -> list[tuple[str, str]]:
        """(type, ID) of the events recorded because of `event_id` (their causation)."""
        members = self.views.index_range(keys.caused(event_id), limit=SCAN)
        return [(kind, eid) for m, _ in members for kind, _, eid in [m.partition(":")]]

    def caused_ids(self, event_id: str, event_type: str | None = None) -> list[str]:
        """IDs of the events recorded because of `event_id`, oldest first."""
        return [e for kind, e in self.caused(event_id) if event_type in (None, kind)]

    def caused_by(self, event_id: str, event_type: str) -> list[Any]:
        """The events of `event_type` recorded because of `event_id` (types in EVENT_DOCS)."""
        ids = self.caused_ids(event_id, event_type)
        return [_event(d) for d in self.views.get_many([keys.event(i) for i in ids]) if d]

    def request(self, request_id: str) -> g.RetrainRequested | None:
        from keel.events import generated as g

        e = self.event(request_id)
        return e if isinstance(e, g.RetrainRequested) else None

    def request_features(self, request_id: str) -> dict[str, g.FeaturesBuilt]:
        """The feature sets built for a retrain request, by role ("training", "held-out")."""
        req = self.request(request_id)
        if req is None:
            return {}
        out: dict[str, g.FeaturesBuilt] = {}
        for fb in self.caused_by(request_id, "FeaturesBuilt"):
            if tuple(fb.dataset_ids) == tuple(sorted(set(req.dataset_ids))):
                out["training"] = fb
            if tuple(fb.dataset_ids) == (req.eval_dataset_id,):
                out["held-out"] = fb
        return out

    # -- artifacts, datasets, features, models ---------------------------------------------
    def artifact(self, artifact_id: str) -> dict[str, Any] | None:
        return self.views.get(keys.artifact(artifact_id))

    def dataset(self, dataset_id: str) -> dict[str, Any] | None:
        return self.views.get(keys.dataset(dataset_id))

    def datasets_of(self, family: str) -> list[str]:
        """Every dataset ingested for the family, oldest first."""
        return [m for m, _ in self.views.index_range(keys.datasets(family), limit=10**9)]

    def feature_set(self, feature_set_id: str) -> g.FeaturesBuilt | None:
        doc = self.views.get(keys.featureset(feature_set_id))
        return self.event(doc["event_id"]) if doc and doc.get("event_id") else None

    def model(self, model_id: str) -> g.ModelTrained | None:
        doc = self.views.get(keys.model(model_id))
        return self.event(doc["event_id"]) if doc and doc.get("event_id") else None

    def evaluations(self, model_id: str) -> list[g.ModelEvaluated]:
        doc = self.views.get(keys.model(model_id)) or {}
        ids = [e["event_id"] for e in doc.get("evaluations", []) if e.get("event_id")]
        return [_event(d) for d in self.views.get_many([keys.event(i) for i in ids]) if d]

    def latest_eval(self, model_id: str) -> g.ModelEvaluated | None:
        evals = self.evaluations(model_id)
        return evals[-1] if evals else None

    # -- serving -------------------------------------------------------------------------------
    def serving_now(self, family: str, env: str) -> Interval | None:
        return self._serving(family, env, float("inf"))

    def serving_at(self, family: str, env: str, at: datetime) -> Interval | None:
        """What served `env` at business time `at`, as recorded so far: the deployment with the
        latest business time at or before `at`, and its end (the next one's time, if any). A
        decision dated `at` is judged against this one, not against what serves today."""
        return self._serving(family, env, float(int(at.timestamp() * 1000)))

    def _serving(self, family: str, env: str, bound: float) -> Interval | None:
        below, above, (doc, following) = self.views.index_around_docs(
            keys.serving(family, env), bound, keys.DEPLOYMENT_PREFIX
        )
        if below is None or doc is None or doc.get("kind") == WITHDRAWN:
            return None
        end = datetime.fromisoformat(following["since"]) if above and following else None
        return _interval(doc, end)

    def intervals(self, family: str, env: str) -> list[Interval]:
        """Every serving interval of the environment, oldest first (rollbacks read them)."""
        members = [m for m, _ in self.views.index_range(keys.serving(family, env), limit=10**9)]
        docs = [
            d for d in self.views.get_many([index_order.deployment_key(m) for m in members]) if d
        ]
        out: list[Interval] = []
        for doc, nxt in zip(docs, [*docs[1:], None][: len(docs)], strict=True):
            if doc.get("kind") != WITHDRAWN:  # it only ends the one before
                out.append(_interval(doc, datetime.fromisoformat(nxt["since"]) if nxt else None))
        return out

    # -- the registry ---------------------------------------------------------------------------
    def decisions(self, family: str) -> list[dict[str, Any]]:
        """Every registry decision of the family (decision documents), oldest first."""
        members = [m for m, _ in self.views.index_range(keys.registry(family), limit=10**9)]
        wanted = [index_order.decision_key(m) for m in members]
        return [d for d in self.views.get_many(wanted) if d]

    def decision(self, event_id: str) -> dict[str, Any] | None:
        return self.views.get(keys.decision(event_id))

    def pending(self, pending_id: str) -> g.PromotionPending | None:
        from keel.events import generated as g

        e = self.event(pending_id)
        return e if isinstance(e, g.PromotionPending) else None

    def _pending_doc(self, pending_id: str) -> dict[str, Any]:
        return self.views.get(keys.pending(pending_id)) or {}

    def concluded(self, pending_id: str) -> bool:
        return bool(self._pending_doc(pending_id).get("concluded"))

    def approvers(self, pending_id: str) -> list[str]:
        """The distinct people who approved a pending promotion, in order."""
        return list(self._pending_doc(pending_id).get("approvers", []))

    def reviews(self, pending_id: str) -> list[g.PromotionReviewed]:
        ids = self._pending_doc(pending_id).get("reviews", [])
        return [_event(d) for d in self.views.get_many([keys.event(i) for i in ids]) if d]

    def open_pending(self, family: str, env: str) -> list[g.PromotionPending]:
        """Pending promotions of `env` still waiting for approvals, oldest first."""
        ids = (self.views.get(keys.open_pending(family, env)) or {}).get("pending", [])
        return [_event(d) for d in self.views.get_many([keys.event(i) for i in ids]) if d]

    # -- counts ------------------------------------------------------------------------------
    def applied(self) -> int:
        return int((self.views.get(keys.STATS) or {}).get("applied", 0))


def __getattr__(name: str) -> Any:
    # `from keel.audit.readmodel import Event` still works, importing the events on demand
    if name == "Event":
        from keel.events import Event

        return Event
    raise AttributeError(f"module 'keel.audit.readmodel' has no attribute {name!r}")


__all__ = ["Event", "Interval", "ReadModel"]
