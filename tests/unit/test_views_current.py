"""keel.audit.current: a query may skip the projector run only when that run would do nothing
(fold no record, migrate no tree, publish no checkpoint); its keys are the projector's own."""

from __future__ import annotations

from typing import Any

import pytest

from keel.audit import current, projection
from keel.audit.current import nothing_to_fold

pytestmark = pytest.mark.unit

ENDS = {("ingest", 0): 5, ("training", 0): 3}
TREES = {
    "ingest/0": {"size": 5, "hashes": [], "leaf2_from": 0},
    "training/0": {"size": 3, "hashes": [], "leaf2_from": 0},
}
SIZES = {"ingest/0": 5, "training/0": 3}
SHAPE = {"version": current.SHAPE_VERSION}


def test_the_shape_is_the_projections() -> None:
    assert current.SHAPE_VERSION == projection.SHAPE_VERSION


def test_views_at_the_end_and_checkpointed_need_no_run() -> None:
    assert nothing_to_fold(ENDS, dict(ENDS), SHAPE, TREES, SIZES)


@pytest.mark.parametrize(
    "change",
    [
        {"tracking": {("ingest", 0): 4, ("training", 0): 3}},  # a record not folded
        {"tracking": {("ingest", 0): 6, ("training", 0): 3}},  # a log shorter than the views
        {"tracking": {("ingest", 0): 5}},  # a topic never folded
        {"ends": {}},  # an empty log
        {"shape": {"version": current.SHAPE_VERSION - 1}},  # views of an older Keel
        {"shape": None},
        {"checkpointed": {"ingest/0": 5, "training/0": 2}},  # trees grew past the checkpoint
        {"checkpointed": None},
        {"trees": None},
        {"trees": {**TREES, "ingest/0": {"size": 5, "hashes": []}}},  # before leaf format 2
    ],
)
def test_anything_a_run_would_do_is_left_to_it(change: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "ends": ENDS,
        "tracking": dict(ENDS),
        "shape": SHAPE,
        "trees": TREES,
        "checkpointed": SIZES,
        **change,
    }
    assert not nothing_to_fold(**args)
