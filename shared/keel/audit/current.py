"""Whether the audit views are already at the log's end with nothing left for a projector run
to do, decided from four reads and without importing the projector (issue 36).

A query brings the views to the log's end first (keel.audit.freshness): a Projector run that,
when nothing moved, reads nothing, signs nothing and writes nothing, but costs its imports
(the event classes, pydantic, cryptography, prometheus-client: ~200 ms of a 250 ms budget for
`keel audit serving`). A reader that finds `nothing_to_fold` true may answer from the views as
they are; anything else (a record not folded, trees grown past the last checkpoint, trees or
views of an older shape) is left to the real run, which decides as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keel.audit.keys import CHECKPOINTED, SHAPE, TREES
from keel.log.port import EventLog, TopicPartition
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore

# keel.audit.projection.SHAPE_VERSION (a unit test checks they are the same): importing the
# projection is the cost this module exists to avoid.
SHAPE_VERSION = 6


def nothing_to_fold(
    ends: Mapping[TopicPartition, int],
    tracking: Mapping[TopicPartition, int],
    shape: Mapping[str, Any] | None,
    trees: Mapping[str, Any] | None,
    checkpointed: Mapping[str, Any] | None,
) -> bool:
    """True when a Projector run over these would fold no record, migrate nothing and publish
    no checkpoint: the views were folded by this shape, their tracking is exactly the log's
    end offsets (a log shorter than the views, e.g. restored, is left to the run), every tree
    is in leaf format 2's layout and the last checkpoint covers the trees as they are."""
    if not ends or (shape or {}).get("version") != SHAPE_VERSION:
        return False
    if {tp: o for tp, o in tracking.items() if o} != {tp: o for tp, o in ends.items() if o}:
        return False
    if not trees or any(not isinstance(t, dict) or "leaf2_from" not in t for t in trees.values()):
        return False
    sizes = {key: t.get("size") for key, t in trees.items()}
    return sizes == dict(checkpointed or {})


def views_current(log: EventLog, views: ViewStore, name: str = "audit") -> bool:
    """nothing_to_fold for this log and these views (projector `name`)."""
    shape, trees, checkpointed = views.get_many([SHAPE, TREES, CHECKPOINTED])
    ends = log.end_offsets(EVENT_TOPICS)
    return nothing_to_fold(ends, views.tracking(name), shape, trees, checkpointed)
