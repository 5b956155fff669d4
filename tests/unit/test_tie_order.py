"""Deployments with the same business time are ordered by when the log recorded them (its
position), never by their random event IDs: every reader of the serving index agrees on which
one serves, and a rollback acts on the same one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keel.audit import inventory
from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.log.sqlite import SqliteEventLog
from keel.views.sqlite import SqliteViewStore
from keel_services.deploy.domain import rollback_target
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


# -- registry decisions: the same rule for `registry:{family}` and a model's `decisions` --------
def decided(model_id: str, env: str, promoted: bool, reason: str, at: datetime = T2) -> Any:
    """A gate's verdict on `model_id` for `env` at business time `at`; `reason` tells it apart."""
    kind = g.ModelPromoted if promoted else g.PromotionRejected
    gate = g.GateResult(name="auc", metric="auc", op=">=", threshold=0.5, value=0.9, passed=True)
    extra: dict[str, Any] = {} if promoted else {"failed_gates": ("auc",)}
    return kind(
        envelope=envelope(
            kind.EVENT_TYPE,
            subject=f"fam/{env}",  # as the promote service keys them: one partition per env
            service="test",
            code_version="c0de",
            actor="tester",
            correlation_id="c",
            occurred_at=at,
        ),
        family="fam",
        model_id=model_id,
        env=env,
        eval_report_id="e" * 64,
        metrics={"auc": 0.9},
        gates=(gate,),
        reason=reason,
        **extra,
    )


def trained(model_id: str) -> g.ModelTrained:
    return g.ModelTrained(
        envelope=envelope(
            "ModelTrained",
            subject=model_id,
            service="test",
            code_version="c0de",
            actor="tester",
            correlation_id="c",
            occurred_at=T1,
        ),
        family="fam",
        model_id=model_id,
        feature_set_ids=(),
        trainer="sklearn.linear_model.LogisticRegression",
        params={},
        code_version="c0de",
    )


def test_decisions_at_one_business_time_follow_the_recorded_order(
    tmp_path: Path, codec: Codec
) -> None:
    # eight verdicts on one model for prod at T2, a second apart in the log: promoted,
    # rejected, promoted... - the last recorded promotion is the one why-promoted shows
    reasons = [f"d{i}" for i in range(8)]
    clock = [int(T2.timestamp() * 1000)]
    log = SqliteEventLog(tmp_path / "log.db", clock=lambda: clock[0])
    first = [trained("X"), decided("X", "prod", True, "before", at=T1)]
    log.append([to_outgoing(codec, e) for e in first])
    for i, reason in enumerate(reasons):
        clock[0] += 1000
        log.append([to_outgoing(codec, decided("X", "prod", i % 2 == 0, reason))])
    views = SqliteViewStore(tmp_path / "views.db")
    Projector(log, views, codec, trees=False).run()
    read = ReadModel(views)
    everything = ["before", *reasons]

    assert [d["reason"] for d in read.decisions("fam")] == everything
    assert [d["reason"] for d in vq.registry_history(views, "fam", limit=50)] == everything
    assert [d["reason"] for d in vq.registry_history(views, "fam", 3, 2)] == ["d2", "d3"]
    rows, _ = vq.decisions_during(views, "fam", T1, datetime(2027, 1, 1, tzinfo=UTC))
    assert [d["reason"] for d in rows] == everything
    model = views.get("model:X") or {}
    assert [(views.get(f"decision:{e}") or {})["reason"] for e in model["decisions"]] == everything
    assert vq.why_promoted(views, "X", "prod")["promotion"]["reason"] == "d6"
    assert [d["reason"] for d in vq.why_promoted(views, "X", "prod")["rejections"]] == reasons[1::2]
    # as known when only the first four verdicts at T2 were recorded
    fourth = next(
        r for r in log.read() if getattr(decode_event(codec, r.value), "reason", "") == "d3"
    )
    as_of = datetime.fromtimestamp(fourth.recorded_ms / 1000, UTC)
    known = vq.registry_history(views, "fam", limit=50, as_of=as_of)
    assert [d["reason"] for d in known] == everything[:5]
    assert vq.why_promoted(views, "X", "prod", as_of=as_of)["promotion"]["reason"] == "d2"


def test_decisions_in_one_append_follow_the_log_position(tmp_path: Path, codec: Codec) -> None:
    # one append, one recorded time: a model promoted through five environments in turn at one
    # business time reached them in the order the log holds
    envs = ["dev", "qa", "staging", "canary", "prod"]
    log = SqliteEventLog(tmp_path / "log.db")
    log.append([to_outgoing(codec, decided("Y", e, True, f"to {e}")) for e in envs])
    views = SqliteViewStore(tmp_path / "views.db")
    Projector(log, views, codec, trees=False).run()
    assert [d["env"] for d in ReadModel(views).decisions("fam")] == envs
    answer = vq.why_promoted(views, "Y")
    assert [a["env"] for a in answer["environments"]] == envs
