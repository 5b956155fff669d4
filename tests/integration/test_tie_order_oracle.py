"""Histories full of ties: many deployments share a business time (and, appended together,
one recorded time). Every reader of the serving index - serving_at as of any R, serving_now,
intervals, deployments_during, the inventory list, the rollback target - must equal a
brute-force oracle that breaks ties by the log position, on both backends (embedded SQLite log
and views; Kafka and Redis). A second fold of the same log gives the same index entries."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.audit import inventory
from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.errors import KeelError
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.log.port import EventLog, LogRecord
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from keel_services.deploy.domain import rollback_target

pytestmark = pytest.mark.integration
CODEC = Codec(load_registry())
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PLACES = (("fa", "prod"), ("fa", "staging"), ("fb", "prod"))
MODELS = ("a" * 12, "b" * 12, "c" * 12, "d" * 12)  # few models: rollbacks find earlier ones


@dataclass(frozen=True)
class Append:
    """One append of deployments, each (place, business-time slot, model): slots are hours
    after T0 and few, so business times collide often; the batch shares one recorded time."""

    deployments: tuple[tuple[int, int, int], ...]
    clock_step_ms: int  # how far the log's clock moves before it (0: the same millisecond)


appends = st.lists(
    st.builds(
        Append,
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3)),
            min_size=1,
            max_size=4,
        ).map(tuple),
        st.sampled_from([0, 0, 1, 1000]),
    ),
    min_size=1,
    max_size=10,
)


def deployed(place: int, slot: int, model: int) -> g.ModelDeployed:
    family, env = PLACES[place]
    return g.ModelDeployed(
        envelope=envelope(
            "ModelDeployed",
            subject=f"{family}/{env}",  # one subject key per family/env: one Kafka partition
            service="t",
            code_version="c",
            actor="t",
            correlation_id="c",
            occurred_at=T0 + timedelta(hours=slot),
        ),
        family=family,
        env=env,
        model_id=MODELS[model],
        manifest_id="m" * 64,
        kind="promotion",
    )


def write(log: EventLog, append: Append) -> None:
    log.append([to_outgoing(CODEC, deployed(*d)) for d in append.deployments])


# -- the oracle: what the log recorded, in recorded order within each business time ---------
def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def ordered(records: list[LogRecord], family: str, env: str, r: int | None) -> list[Any]:
    """The family/env's deployments recorded by `r`, by (business time, log position)."""
    deps = []
    for rec in records:
        e = decode_event(CODEC, rec.value)
        if (e.family, e.env) == (family, env) and (r is None or rec.recorded_ms <= r):
            deps.append((ms(e.envelope.occurred_at), rec.offset, e))
    return [e for _, _, e in sorted(deps, key=lambda d: (d[0], d[1]))]


def oracle_at(deps: list[Any], t: int) -> tuple[str | None, str | None]:
    before = [i for i, e in enumerate(deps) if ms(e.envelope.occurred_at) <= t]
    if not before:
        return None, None
    i = before[-1]
    nxt = deps[i + 1].envelope.occurred_at.isoformat() if i + 1 < len(deps) else None
    return deps[i].model_id, nxt


def check(log: EventLog, views: ViewStore, again: ViewStore) -> int:
    Projector(log, views, CODEC, trees=False).run()
    records = list(log.read(["deployments"]))
    read = ReadModel(views)
    recs = sorted({r.recorded_ms for r in records})
    checked = 0
    for family, env in PLACES:
        deps = ordered(records, family, env, None)
        ids = [e.envelope.event_id for e in deps]
        now = read.serving_now(family, env)
        assert (now.deployment_event_id if now else None) == (ids[-1] if ids else None)
        ivs = read.intervals(family, env)
        assert [iv.deployment_event_id for iv in ivs] == ids
        rows, _ = vq.deployments_during(views, family, env, T0, T0 + timedelta(days=1))
        assert [d["event_id"] for d in rows] == ids
        listed = inventory.deployments(views, family, env, limit=1000)
        assert [d["event_id"] for d in listed] == ids[::-1]
        if ivs:
            try:
                target = rollback_target(ivs, None).model_id
            except KeelError:
                target = None
            earlier = [e.model_id for e in deps[:-1] if e.model_id != deps[-1].model_id]
            assert target == (earlier[-1] if earlier else None)
        for r in [None, recs[0] - 1, *recs]:
            as_of = None if r is None else datetime.fromtimestamp(r / 1000, UTC)
            known = ordered(records, family, env, r)
            for slot in range(-1, 5):
                t = ms(T0 + timedelta(hours=slot))
                doc = vq.serving_at(
                    views, family, env, datetime.fromtimestamp(t / 1000, UTC), as_of
                )
                got = (
                    (doc["serving"]["model_id"], doc["serving"]["until"])
                    if doc["serving"]
                    else None
                )
                want = oracle_at(known, t)
                assert got == (want if want[0] else None), (family, env, slot, r)
                checked += 1
    # the index is a function of the log: a second fold writes the same entries
    Projector(log, again, CODEC, trees=False).run()
    assert views.snapshot()["indexes"] == again.snapshot()["indexes"]
    return checked


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=appends)
def test_sqlite_ties_follow_the_log_position(tmp_path_factory: Any, history: list[Append]) -> None:
    d: Path = tmp_path_factory.mktemp("ties")
    clock = [ms(T0 + timedelta(days=10))]
    log = SqliteEventLog(d / "log.db", clock=lambda: clock[0])
    views, again = SqliteViewStore(d / "views.db"), SqliteViewStore(d / "again.db")
    for append in history:
        clock[0] += append.clock_step_ms
        write(log, append)
    assert check(log, views, again) > 0
    for closing in (log, views, again):
        closing.close()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=appends)
def test_kafka_redis_ties_follow_the_log_position(
    kafka_bootstrap: str, redis_url: str, history: list[Append]
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.views.redis import RedisViewStore

    log = KafkaEventLog(kafka_bootstrap, prefix=new_prefix())
    views = RedisViewStore(redis_url, namespace=f"ties{time.time_ns()}:")
    again = RedisViewStore(redis_url, namespace=f"ties{time.time_ns()}b:")
    try:
        # the broker stamps recorded time: a batch shares one, and some appends share a ms
        for append in history:
            if append.clock_step_ms == 1000:
                time.sleep(0.005)
            write(log, append)
        assert check(log, views, again) > 0
    finally:
        views.clear()
        again.clear()
        log.close()


# -- registry decisions: `registry:{family}`, a model's decisions, why-promoted ----------------
@dataclass(frozen=True)
class Verdicts:
    """One append of gate verdicts, each (place, business-time slot, model, promoted)."""

    verdicts: tuple[tuple[int, int, int, bool], ...]
    clock_step_ms: int


verdict_appends = st.lists(
    st.builds(
        Verdicts,
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3), st.booleans()),
            min_size=1,
            max_size=4,
        ).map(tuple),
        st.sampled_from([0, 0, 1, 1000]),
    ),
    min_size=1,
    max_size=10,
)


def verdict(place: int, slot: int, model: int, promoted: bool) -> Any:
    family, env = PLACES[place]
    kind = g.ModelPromoted if promoted else g.PromotionRejected
    gate = g.GateResult(name="f1", metric="f1", op=">=", threshold=0.5, value=0.7, passed=True)
    return kind(
        envelope=envelope(
            kind.EVENT_TYPE,
            subject=f"{family}/{env}",  # as the promote service keys them
            service="t",
            code_version="c",
            actor="t",
            correlation_id="c",
            occurred_at=T0 + timedelta(hours=slot),
        ),
        family=family,
        model_id=f"{family}-{MODELS[model]}",  # a model belongs to one family
        env=env,
        eval_report_id="e" * 64,
        metrics={"f1": 0.7},
        gates=(gate,),
        reason="r",
        **({} if promoted else {"failed_gates": ("f1",)}),
    )


def decided(records: list[LogRecord], family: str, r: int | None) -> list[Any]:
    """The family's decisions recorded by `r` in recorded order within each business time:
    (business time, recorded time, log position). One environment's decisions share a
    partition, so among them this is the log's own order; a family's environments may sit in
    different partitions, where the recorded time orders them, and within one millisecond
    the position and then the event ID: arbitrary, but a function of the log."""
    found = []
    for rec in records:
        e = decode_event(CODEC, rec.value)
        if e.family == family and (r is None or rec.recorded_ms <= r):
            key = (ms(e.envelope.occurred_at), rec.recorded_ms, rec.offset, e.envelope.event_id)
            found.append((key, e))
    return [e for _, e in sorted(found, key=lambda f: f[0])]


def check_decisions(log: EventLog, views: ViewStore, again: ViewStore) -> int:
    Projector(log, views, CODEC, trees=False).run()
    records = list(log.read(["registry"]))
    read = ReadModel(views)
    recs = sorted({r.recorded_ms for r in records})
    end = T0 + timedelta(days=1)
    checked = 0
    for family in sorted({f for f, _ in PLACES}):
        want = [e.envelope.event_id for e in decided(records, family, None)]
        assert [d["event_id"] for d in read.decisions(family)] == want
        paged = [
            d["event_id"]
            for offset in range(0, len(want) + 3, 3)
            for d in vq.registry_history(views, family, offset, 3)
        ]
        assert paged == want
        for r in [None, recs[0] - 1, *recs]:
            as_of = None if r is None else datetime.fromtimestamp(r / 1000, UTC)
            known = [e.envelope.event_id for e in decided(records, family, r)]
            history = vq.registry_history(views, family, limit=1000, as_of=as_of)
            assert [d["event_id"] for d in history] == known, (family, r)
            during, _ = vq.decisions_during(views, family, T0, end, as_of)
            assert [d["event_id"] for d in during] == known, (family, r)
            checked += 2
        events = decided(records, family, None)
        for model in (f"{family}-{m}" for m in MODELS):
            mine = [e for e in events if e.model_id == model]
            doc = views.get(f"model:{model}")
            assert (doc or {}).get("decisions", []) == [e.envelope.event_id for e in mine]
            if not mine:
                continue
            promoted = [e for e in mine if isinstance(e, g.ModelPromoted)]
            envs = [e for e in dict.fromkeys(e.env for e in mine)]
            for env in envs:
                here = [e for e in promoted if e.env == env]
                rejected = [
                    e.envelope.event_id
                    for e in mine
                    if e.env == env and isinstance(e, g.PromotionRejected)
                ]
                if not here:
                    with pytest.raises(KeelError):
                        vq.why_promoted(views, model, env)
                    continue
                answer = vq.why_promoted(views, model, env)
                assert answer["promotion"]["event_id"] == here[-1].envelope.event_id
                assert [d["event_id"] for d in answer["rejections"]] == rejected
                checked += 1
            if promoted:  # every environment, in the order the model first reached it
                reached = [e for e in envs if any(p.env == e for p in promoted)]
                answer = vq.why_promoted(views, model)
                assert [a["env"] for a in answer["environments"]] == reached
    # the index and the models' lists are a function of the log: a second fold agrees
    Projector(log, again, CODEC, trees=False).run()
    ours, theirs = views.snapshot(), again.snapshot()
    assert ours["indexes"] == theirs["indexes"]
    models = {k: v for k, v in ours["docs"].items() if k.startswith("model:")}
    assert models == {k: v for k, v in theirs["docs"].items() if k.startswith("model:")}
    return checked


def write_verdicts(log: EventLog, append: Verdicts) -> None:
    log.append([to_outgoing(CODEC, verdict(*v)) for v in append.verdicts])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=verdict_appends)
def test_sqlite_decision_ties_follow_the_log_position(
    tmp_path_factory: Any, history: list[Verdicts]
) -> None:
    d: Path = tmp_path_factory.mktemp("decision-ties")
    clock = [ms(T0 + timedelta(days=10))]
    log = SqliteEventLog(d / "log.db", clock=lambda: clock[0])
    views, again = SqliteViewStore(d / "views.db"), SqliteViewStore(d / "again.db")
    for append in history:
        clock[0] += append.clock_step_ms
        write_verdicts(log, append)
    assert check_decisions(log, views, again) > 0
    for closing in (log, views, again):
        closing.close()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=verdict_appends)
def test_kafka_redis_decision_ties_follow_the_log_position(
    kafka_bootstrap: str, redis_url: str, history: list[Verdicts]
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.views.redis import RedisViewStore

    log = KafkaEventLog(kafka_bootstrap, prefix=new_prefix())
    views = RedisViewStore(redis_url, namespace=f"dties{time.time_ns()}:")
    again = RedisViewStore(redis_url, namespace=f"dties{time.time_ns()}b:")
    try:
        for append in history:
            if append.clock_step_ms == 1000:
                time.sleep(0.005)
            write_verdicts(log, append)
        assert check_decisions(log, views, again) > 0
    finally:
        views.clear()
        again.clear()
        log.close()
