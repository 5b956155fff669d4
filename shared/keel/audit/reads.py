"""The one read surface over the audit views: `Reads(views)` answers everything services,
commands, the CLI, the HTTP apps and `keel.Client` read (issue 35).

    reads = Reads(rt.views)
    reads.serving_at(family, env, at)         # the Interval a decision is judged against
    reads.serving(family, env, at, as_of)     # the audit answer (a document, as --json prints)
    reads.models(family, limit=5)             # what exists, newest first, paginated

Three internal modules hold the code, by role, and nothing outside this one imports them
(tests/unit/test_architecture.py): keel.audit.readmodel (events and intervals by ID, what
services decide on), keel.audit.view_queries (the audit questions as documents, bitemporal)
and keel.audit.inventory (what exists, paginated). Every lookup is a few key reads and index
ranges, whatever the history size; nothing here folds the log (the caller brings the views to
the log's end first: keel.pipeline, keel.Client.fresh_views, the audit API's FreshViews).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keel.audit import inventory as _inv
from keel.audit import keys
from keel.audit import view_queries as _vq
from keel.audit.readmodel import SCAN, WITHDRAWN, Interval, ReadModel
from keel.audit.view_queries import ReadJson

MAX_LIMIT = _inv.MAX_LIMIT  # the largest page an inventory query returns


class Reads(ReadModel):
    """Every query over one ViewStore. The event lookups (`event`, `model`, `serving_at`,
    `open_pending`, ...) come from the read model services decide on; the methods below answer
    the audit questions and the inventory as JSON-ready documents."""

    # -- the audit questions (documents) -----------------------------------------------------
    def serving(
        self, family: str, env: str, at: datetime, as_of: datetime | None = None
    ) -> dict[str, Any]:
        """What served `env` at business time `at`, as known at `as_of` (None: now)."""
        return _vq.serving_at(self.views, family, env, at, as_of)

    def why(
        self, family: str, env: str, at: datetime, as_of: datetime | None = None
    ) -> dict[str, Any]:
        """Deployment -> promotion -> evaluation -> model -> data, for what served at `at`."""
        return _vq.why(self.views, family, env, at, as_of)

    def why_promoted(
        self,
        model_id: str,
        env: str | None = None,
        over: str | None = None,
        as_of: datetime | None = None,
    ) -> dict[str, Any]:
        return _vq.why_promoted(self.views, model_id, env, over, as_of)

    def diff(
        self, a: str, b: str, read_json: ReadJson, top: int = 5, as_of: datetime | None = None
    ) -> dict[str, Any]:
        return _vq.diff(self.views, a, b, read_json, top, as_of)

    def registry_history(
        self, family: str, offset: int = 0, limit: int = 50, as_of: datetime | None = None
    ) -> list[dict[str, Any]]:
        return _vq.registry_history(self.views, family, offset, limit, as_of)

    def deployments_during(
        self,
        family: str,
        env: str,
        start: datetime,
        end: datetime,
        as_of: datetime | None = None,
        limit: int = 300,
    ) -> tuple[list[dict[str, Any]], bool]:
        return _vq.deployments_during(self.views, family, env, start, end, as_of, limit)

    def decisions_during(
        self,
        family: str,
        start: datetime,
        end: datetime,
        as_of: datetime | None = None,
        limit: int = 500,
    ) -> tuple[list[dict[str, Any]], bool]:
        return _vq.decisions_during(self.views, family, start, end, as_of, limit)

    def latest_drift(
        self, family: str, env: str, at: datetime, model_id: str
    ) -> dict[str, Any] | None:
        return _vq.latest_drift(self.views, family, env, at, model_id)

    def trust_reset(self) -> dict[str, Any] | None:
        """The newest declared restore (`keel audit reset-trust`), which every answer after it
        shows; None if trust was never reset."""
        from keel.audit.resets import latest

        return latest(self.views.get(keys.TRUST_RESETS))

    def serving_window(self, family: str, env: str, at: datetime) -> dict[str, Any] | None:
        """The last window of served features ENV's serving process recorded by `at`
        (ServingStatsRecorded), or None."""
        hit = self.views.index_floor(keys.skew(family, env), at.timestamp() * 1000)
        return None if hit is None else self.views.get(keys.serving_stats(hit[0])) or {}

    def model_doc(self, model_id: str) -> dict[str, Any]:
        """A model's document in the views ({} if unknown)."""
        return self.views.get(keys.model(model_id)) or {}

    def feature_set_doc(self, feature_set_id: str) -> dict[str, Any]:
        """A feature set's document in the views ({} if unknown)."""
        return self.views.get(keys.featureset(feature_set_id)) or {}

    # -- what exists (inventory, newest first) ----------------------------------------------
    def families(self) -> list[str]:
        return _inv.families(self.views)

    def models(
        self, family: str, env: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        return _inv.models(self.views, family, env, offset, limit)

    def datasets(self, family: str, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        return _inv.datasets(self.views, family, offset, limit)

    def deployments(
        self, family: str, env: str, offset: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        return _inv.deployments(self.views, family, env, offset, limit)

    def artifacts(
        self, kind: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[dict[str, Any]]:
        return _inv.artifacts(self.views, kind, offset, limit)


def label_summary(stats: dict[str, Any]) -> str:
    """One line for a label's training stats (how the CLI and the demo print them)."""
    return _vq.label_summary(stats)


__all__ = ["MAX_LIMIT", "SCAN", "WITHDRAWN", "Interval", "ReadJson", "Reads", "label_summary"]
