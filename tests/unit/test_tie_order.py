"""Deployments with the same business time are ordered by when the log recorded them (its
position), never by their random event IDs: every reader of the serving index agrees on which
one serves, and a rollback acts on the same one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.audit import inventory
from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.views.sqlite import SqliteViewStore
from services.deploy.domain import rollback_target
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit
T1, T2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def test_ties_at_one_business_time_resolve_to_the_last_recorded(
    tmp_path: Path, codec: Codec
) -> None:
    # eight deployments at T2, each appended on its own: random event IDs put them in order
    # by chance once in 8! folds
    ties = [f"M{i}" for i in range(8)]
    clock = [int(T2.timestamp() * 1000)]  # the log's clock: a second per append
    log = SqliteEventLog(tmp_path / "log.db", clock=lambda: clock[0])
    log.append([to_outgoing(codec, make_deployed("FIRST", at=T1))])
    for m in ties:
        clock[0] += 1000
        log.append([to_outgoing(codec, make_deployed(m, at=T2))])
    views = SqliteViewStore(tmp_path / "views.db")
    Projector(log, views, codec, trees=False).run()
    read = ReadModel(views)

    assert read.serving_now("fam", "prod").model_id == "M7"  # type: ignore[union-attr]
    assert [iv.model_id for iv in read.intervals("fam", "prod")] == ["FIRST", *ties]
    assert vq.serving_at(views, "fam", "prod", T2)["serving"]["model_id"] == "M7"
    rows, _ = vq.deployments_during(views, "fam", "prod", T1, datetime(2027, 1, 1, tzinfo=UTC))
    assert [r["model_id"] for r in rows] == ["FIRST", *ties]
    listed = inventory.deployments(views, "fam", "prod", limit=20)
    assert [r["model_id"] for r in listed] == [*reversed(ties), "FIRST"]
    assert rollback_target(read.intervals("fam", "prod"), None).model_id == "M6"
    # as known when only the first four ties were recorded: the fourth served, until the fifth
    fourth = next(r for r in log.read() if r.offset == 5)
    as_of = datetime.fromtimestamp(fourth.recorded_ms / 1000, UTC)
    answer = vq.serving_at(views, "fam", "prod", T2, as_of)["serving"]
    assert answer["model_id"] == "M3" and answer["until"] is None
    answer = vq.serving_at(views, "fam", "prod", T1, as_of)["serving"]
    assert answer["model_id"] == "FIRST" and answer["until"] == T2.isoformat()


def test_ties_in_one_append_follow_the_log_position(tmp_path: Path, codec: Codec) -> None:
    # one append: one recorded time for all, so only the position tells them apart
    ties = [f"N{i}" for i in range(8)]
    log = SqliteEventLog(tmp_path / "log.db")
    log.append([to_outgoing(codec, make_deployed(m, at=T2)) for m in ties])
    views = SqliteViewStore(tmp_path / "views.db")
    Projector(log, views, codec, trees=False).run()
    read = ReadModel(views)
    assert read.serving_now("fam", "prod").model_id == "N7"  # type: ignore[union-attr]
    assert [iv.model_id for iv in read.intervals("fam", "prod")] == ties
