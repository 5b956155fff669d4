"""The one read model: serving intervals, lookups at a time, duplicates skipped, pending
promotions and what followed from an event, read from views the projector folded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.views.sqlite import SqliteViewStore
from keel_services.deploy.domain import rollback_target
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit


def t(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def folded(tmp_path: Path, codec: Codec, events: Sequence[Any]) -> ReadModel:
    log = SqliteEventLog(tmp_path / "log.db")
    log.append([to_outgoing(codec, e) for e in events])
    views = SqliteViewStore(tmp_path / "views.db")
    Projector(log, views, codec, trees=False).run()
    return ReadModel(views)


def test_serving_intervals_answer_which_model_at_a_time(tmp_path: Path, codec: Codec) -> None:
    events = [make_deployed("A", at=t(1)), make_deployed("B", at=t(3)), make_deployed("C", at=t(6))]
    read = folded(tmp_path, codec, events)
    at = [vq.serving_at(read.views, "fam", "prod", when)["serving"] for when in (t(2), t(3), t(12))]
    assert [s["model_id"] for s in at] == ["A", "B", "C"]
    assert (
        vq.serving_at(read.views, "fam", "prod", datetime(2025, 12, 31, tzinfo=UTC))["serving"]
        is None
    )
    assert read.serving_now("fam", "staging") is None
    assert read.serving_now("fam", "prod").model_id == "C"  # type: ignore[union-attr]
    ivs = read.intervals("fam", "prod")
    assert [(iv.start, iv.end) for iv in ivs] == [(t(1), t(3)), (t(3), t(6)), (t(6), None)]


def test_duplicate_events_are_applied_once(tmp_path: Path, codec: Codec) -> None:
    e = make_deployed("A", at=t(1))
    read = folded(tmp_path, codec, [e, e, e])
    assert read.applied() == 1 and len(read.intervals("fam", "prod")) == 1


def test_backdated_deployment_keeps_intervals_in_time_order(tmp_path: Path, codec: Codec) -> None:
    events = [make_deployed("A", at=t(1)), make_deployed("C", at=t(6)), make_deployed("B", at=t(3))]
    read = folded(tmp_path, codec, events)
    assert [iv.model_id for iv in read.intervals("fam", "prod")] == ["A", "B", "C"]
    assert read.serving_now("fam", "prod").model_id == "C"  # type: ignore[union-attr]


def test_rollback_goes_to_the_previous_model_or_a_named_one(tmp_path: Path, codec: Codec) -> None:
    models = ["A" * 12, "B" * 12, "C" * 12]
    read = folded(tmp_path, codec, [make_deployed(m, at=t(i + 1)) for i, m in enumerate(models)])
    ivs = read.intervals("fam", "prod")
    assert rollback_target(ivs, None).model_id == "B" * 12
    assert rollback_target(ivs, "AAAA").model_id == "A" * 12
    with pytest.raises(Exception, match="never served here"):
        rollback_target(ivs, "ZZZZ")
    with pytest.raises(Exception, match="nothing is serving"):
        rollback_target(read.intervals("fam", "staging"), None)


def test_what_followed_an_event_is_found_by_its_cause(tmp_path: Path, codec: Codec) -> None:
    first = make_deployed("A", at=t(1))
    then = make_deployed("B", at=t(2))
    then = type(then)(
        **{**{f: getattr(then, f) for f in then.__slots__}, "envelope": _caused(then, first)}
    )
    read = folded(tmp_path, codec, [first, then])
    assert read.caused_ids(first.envelope.event_id) == [then.envelope.event_id]
    assert read.caused_ids(first.envelope.event_id, "ModelTrained") == []


def _caused(event: Any, cause: Any) -> Any:
    import dataclasses

    return dataclasses.replace(event.envelope, causation_id=cause.envelope.event_id)
