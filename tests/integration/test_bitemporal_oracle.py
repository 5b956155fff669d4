"""Every (T, R) answer from the views' indexes equals a brute-force fold of the events the log
had recorded by R: random histories of deployments, rollbacks, promotions and rejections over
several families and environments, some written into the past, on both backends.

The recorded times are the log's (read back from it), never the test's: on SQLite its append
clock is stepped by the test; on Kafka the broker stamps them."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.log.port import EventLog
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore

pytestmark = pytest.mark.integration
CODEC = Codec(load_registry())
T0 = datetime(2025, 1, 1, tzinfo=UTC)
FAMILIES, ENVS = ("fa", "fb"), ("prod", "staging")


@dataclass(frozen=True)
class Step:
    """One write: its kind, where, how far into the past (minutes before the log's clock; 0:
    now), and how much the clock moves before it."""

    kind: str  # deploy | rollback | promote | reject
    family: str
    env: str
    back_minutes: int
    clock_step_s: int


steps = st.lists(
    st.builds(
        Step,
        st.sampled_from(["deploy", "deploy", "rollback", "promote", "reject"]),
        st.sampled_from(FAMILIES),
        st.sampled_from(ENVS),
        st.one_of(st.just(0), st.just(0), st.integers(1, 60 * 24 * 90)),  # backdated
        st.integers(1, 3600 * 24 * 10),
    ),
    min_size=1,
    max_size=25,
)


def event_for(step: Step, i: int, at: datetime) -> Any:
    env = envelope(
        {"deploy": "ModelDeployed", "rollback": "ModelDeployed"}.get(
            step.kind, "ModelPromoted" if step.kind == "promote" else "PromotionRejected"
        ),
        subject=f"{step.family}/{step.env}",
        service="t",
        code_version="c",
        actor="t",
        correlation_id="c",
        occurred_at=at,
    )
    model = f"{i:064x}"
    if step.kind in ("deploy", "rollback"):
        return g.ModelDeployed(
            envelope=env,
            family=step.family,
            env=step.env,
            model_id=model,
            manifest_id="m" * 64,
            kind="promotion" if step.kind == "deploy" else "rollback",
        )
    common: dict[str, Any] = dict(
        envelope=env,
        family=step.family,
        model_id=model,
        env=step.env,
        eval_report_id="e" * 64,
        metrics={"auc": 0.9},
        gates=(),
        reason=step.kind,
    )
    if step.kind == "promote":
        return g.ModelPromoted(**common)
    return g.PromotionRejected(**common, failed_gates=("auc",))


def write(log: EventLog, step: Step, i: int, now: datetime) -> None:
    at = now - timedelta(minutes=step.back_minutes)
    log.append([to_outgoing(CODEC, event_for(step, i, at))])


# -- the oracle: a brute-force fold of what was recorded by R --------------------------------
def known(log: EventLog) -> list[tuple[int, Any]]:
    return [(r.recorded_ms, decode_event(CODEC, r.value)) for r in log.read()]


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def oracle_serving(
    facts: list[tuple[int, Any]], family: str, env: str, t: int, r: int | None
) -> tuple[str | None, str | None]:
    # ties at one business time break by recorded order: `facts` is in log order, and one
    # family/env's deployments share a partition (decision 0020)
    deps = sorted(
        (ms(e.envelope.occurred_at), i, e)
        for i, (rec, e) in enumerate(facts)
        if isinstance(e, g.ModelDeployed)
        and (e.family, e.env) == (family, env)
        and (r is None or rec <= r)
    )
    before = [d for d in deps if d[0] <= t]
    if not before:
        return None, None
    chosen = before[-1]
    later = [d for d in deps if (d[0], d[1]) > (chosen[0], chosen[1])]
    until = later[0][2].envelope.occurred_at.isoformat() if later else None
    return chosen[2].model_id, until


def oracle_history(facts: list[tuple[int, Any]], family: str, r: int | None) -> list[str]:
    decisions = sorted(
        (ms(e.envelope.occurred_at), e.envelope.event_id)
        for rec, e in facts
        if isinstance(e, g.ModelPromoted | g.PromotionRejected)
        and e.family == family
        and (r is None or rec <= r)
    )
    return [eid for _, eid in decisions]


def check_all(log: EventLog, views: ViewStore) -> int:
    Projector(log, views, CODEC, trees=False).run()
    facts = known(log)
    recs = sorted({rec for rec, _ in facts})
    times_r: list[int | None] = [None, recs[0] - 1, *recs, recs[-1] + 1]
    times_r += [(a + b) // 2 for a, b in itertools.pairwise(recs)]
    occurred = sorted({ms(e.envelope.occurred_at) for _, e in facts})
    times_t = [occurred[0] - 1, *occurred, occurred[-1] + 1]
    checked = 0
    for r in times_r:
        as_of = None if r is None else datetime.fromtimestamp(r / 1000, UTC)
        for family in FAMILIES:
            got = vq.registry_history(views, family, 0, 1000, as_of)
            assert [d["event_id"] for d in got] == oracle_history(facts, family, r), (family, r)
            for env in ENVS:
                for t in times_t:
                    at = datetime.fromtimestamp(t / 1000, UTC)
                    doc = vq.serving_at(views, family, env, at, as_of)["serving"]
                    answer = (doc["model_id"], doc["until"]) if doc else (None, None)
                    assert answer == oracle_serving(facts, family, env, t, r), (
                        family,
                        env,
                        t,
                        r,
                    )
                    checked += 1
    return checked


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps)
def test_sqlite_answers_match_the_oracle(tmp_path_factory: Any, history: list[Step]) -> None:
    d: Path = tmp_path_factory.mktemp("bt")
    clock = [ms(T0 + timedelta(days=400))]  # the log's clock, stepped between writes
    log = SqliteEventLog(d / "log.db", clock=lambda: clock[0])
    views = SqliteViewStore(d / "views.db")
    for i, step in enumerate(history):
        clock[0] += step.clock_step_s * 1000
        write(log, step, i, datetime.fromtimestamp(clock[0] / 1000, UTC))
    assert check_all(log, views) > 0
    log.close()
    views.close()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps)
def test_kafka_redis_answers_match_the_oracle(
    kafka_bootstrap: str, redis_url: str, history: list[Step]
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.views.redis import RedisViewStore

    log = KafkaEventLog(kafka_bootstrap, prefix=new_prefix())
    views = RedisViewStore(redis_url, namespace=f"bt{time.time_ns()}:")
    try:
        # the broker's clock stamps recorded time: real time passes between some writes
        for i, step in enumerate(history):
            if step.clock_step_s % 3 == 0:
                time.sleep(0.005)
            write(log, step, i, datetime.now(UTC))
        assert check_all(log, views) > 0
        assert all(rec > 0 for rec, _ in known(log)), "the broker stamped every record"
    finally:
        views.clear()
        log.close()
