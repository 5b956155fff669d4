"""The audit views' keys: every document and index the projection writes and the readers read,
spelled once. The fold (projection.py), the read model, the queries, the console and the trust
code all name a key through this module, so a key's shape changes here or nowhere
(tests/unit/test_architecture.py fails on a key prefix spelled anywhere else).

Documents hold one thing each (`model:{id}`); indexes (sorted sets scored by time) list members
(`models:{family}`); time indexes' members are keel.audit.index_order's.
"""

from __future__ import annotations

# -- singletons -----------------------------------------------------------------------------
STATS = "projector:stats"  # applied counts, by event type
SHAPE = "projector:shape"  # which shape of views these are (projection.SHAPE_VERSION)
FAMILIES = "meta:families"  # {"families": [...]}
TREES = "audit:trees"  # {"topic/partition": Frontier doc}
CHECKPOINTED = "audit:checkpointed"  # tree sizes of the last published checkpoint
NOTES = "audit:checkpoint-notes"  # {"topic/partition": note} of the last checkpoint
REJECTED = "audit:rejected"  # set of positions of events kept out of the views
TRUST_RESETS = "trust:resets"  # {"resets": [reset, ...]} oldest first
ALL_ARTIFACTS = "artifacts:*"  # index: every artifact, by recorded time
DEPLOYMENT_PREFIX = "deployment:"  # what a serving index's members name (index_around_docs)

# Every prefix a key starts with (the architecture test looks for these elsewhere).
PREFIXES = (
    "artifact",
    "artifacts",
    "audit",
    "caused",
    "children",
    "closed",
    "dataset",
    "datasets",
    "decision",
    "deployment",
    "drift",
    "event",
    "featureset",
    "meta",
    "model",
    "models",
    "open",
    "pending",
    "projector",
    "quarantine",
    "registry",
    "serving",
    "servingstats",
    "skew",
    "trust",
)


# -- documents ------------------------------------------------------------------------------
def event(event_id: str) -> str:
    """A copy of an event services look up as a typed event."""
    return f"event:{event_id}"


def artifact(artifact_id: str) -> str:
    return f"artifact:{artifact_id}"


def dataset(dataset_id: str) -> str:
    return f"dataset:{dataset_id}"


def featureset(feature_set_id: str) -> str:
    return f"featureset:{feature_set_id}"


def model(model_id: str) -> str:
    return f"model:{model_id}"


def quarantine(family: str) -> str:
    """A family's quarantine counts."""
    return f"quarantine:{family}"


def projector_lease(name: str) -> str:
    """Which projector service folds projector `name`'s views, and until when (not a fold
    product: keel.audit.lease writes it, verify leaves it out)."""
    return f"projector:{name}:lease"


def is_projector_lease(key: str) -> bool:
    return key.startswith("projector:") and key.endswith(":lease")


def pending(pending_id: str) -> str:
    """A promotion waiting for approval."""
    return f"pending:{pending_id}"


def open_pending(family: str, env: str) -> str:
    """The promotions of a family's environment still waiting: {"pending": [ids]}."""
    return f"open:{family}:{env}"


def closed_pending(family: str, env: str, pending_id: str) -> str:
    """That a promotion was concluded (promoted, declined) by an event of the family's
    environment: it is never listed waiting there again. One small document a promotion, so
    the waiting list holds only what waits (views shape 6)."""
    return f"closed:{family}:{env}:{pending_id}"


def decision(event_id: str) -> str:
    """A registry decision (promoted, rejected, pending, approved...)."""
    return f"decision:{event_id}"


def deployment(event_id: str) -> str:
    return f"{DEPLOYMENT_PREFIX}{event_id}"


def serving_stats(event_id: str) -> str:
    """One window of serving statistics (skew)."""
    return f"servingstats:{event_id}"


def drift(event_id: str) -> str:
    return f"drift:{event_id}"


def applied(projector: str) -> str:
    """Set: the event IDs a projector (by name, e.g. audit) applied, to skip duplicates."""
    return f"{projector}:applied"


def rejected(position: str) -> str:
    """Why the event at a log position was kept out of the views."""
    return f"{REJECTED}:{position}"


# -- indexes --------------------------------------------------------------------------------
def caused(event_id: str) -> str:
    """Events caused by an event (members `{type}:{id}`)."""
    return f"caused:{event_id}"


def artifacts(kind: str | None = None) -> str:
    """Artifacts of a kind; without one, every artifact."""
    return f"artifacts:{kind}" if kind else ALL_ARTIFACTS


def children(artifact_id: str) -> str:
    """Artifacts made from an artifact."""
    return f"children:{artifact_id}"


def datasets(family: str) -> str:
    return f"datasets:{family}"


def models(family: str) -> str:
    return f"models:{family}"


def registry(family: str) -> str:
    """A family's registry decisions by business time (members: index_order.member)."""
    return f"registry:{family}"


def serving(family: str, env: str) -> str:
    """An environment's deployments by business time (members: index_order.member)."""
    return f"serving:{family}:{env}"


def skew(family: str, env: str) -> str:
    """An environment's serving-statistics windows, scored by their end."""
    return f"skew:{family}:{env}"


def drifts(family: str, env: str) -> str:
    """An environment's drift reports by business time."""
    return f"drift:{family}:{env}"
