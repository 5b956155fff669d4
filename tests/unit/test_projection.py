"""The pure projection fold, without any store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keel.audit.projection import STATS, evolve, keys_for
from keel.views.port import IndexAdd
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit


def fold(events: list[Any]) -> tuple[dict[str, Any], list[IndexAdd]]:
    docs: dict[str, Any] = {}
    index: list[IndexAdd] = []
    for e in events:
        view = {k: docs.get(k) for k in keys_for(e)}
        change = evolve(view, e)
        docs.update(change.docs)
        index.extend(change.index)
    return docs, index


def test_deployments_become_serving_index_entries_and_documents() -> None:
    a = make_deployed("A", at=datetime(2025, 1, 1, tzinfo=UTC))
    b = make_deployed("B", at=datetime(2025, 3, 1, tzinfo=UTC), env="staging")
    docs, index = fold([a, b])
    assert docs[STATS]["applied"] == 2 and docs[STATS]["by_type"] == {"ModelDeployed": 2}
    assert docs["meta:families"] == {"families": ["fam"]}
    # members lead with the recorded time (here none was given: the business time stands in)
    # and the log position (none here: 0), fixed width, so ties sort in recorded order
    zero = "0" * 20
    assert {(i.index, i.member) for i in index} == {
        ("serving:fam:prod", f"0001735689600000.{zero}@{a.envelope.event_id}"),
        ("serving:fam:staging", f"0001740787200000.{zero}@{b.envelope.event_id}"),
    }
    assert docs[f"deployment:{a.envelope.event_id}"]["model_id"] == "A"


def test_evolve_does_not_modify_its_input() -> None:
    e = make_deployed("A")
    view = {k: None for k in keys_for(e)}
    stats = {"applied": 5, "by_type": {"X": 5}}
    view[STATS] = stats
    evolve(view, e)
    assert stats == {"applied": 5, "by_type": {"X": 5}}
