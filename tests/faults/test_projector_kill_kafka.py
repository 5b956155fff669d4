"""Projector SIGKILLed 20 times in a 200k-event fold on Kafka + Redis: equals a clean fold,
Merkle trees included."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.views.redis import RedisViewStore
from tests.faults.killing import clean_env, kill_repeatedly
from tests.faults.test_projector_kill import EVENTS, KILLS, events

pytestmark = [pytest.mark.faults, pytest.mark.integration]
KEEL = str(Path(sys.executable).with_name("keel"))


def test_projector_survives_sigkill_exactly_on_kafka_and_redis(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    codec = Codec(load_registry())
    pa = new_prefix()
    log = KafkaEventLog(kafka_bootstrap, prefix=pa)
    for start in range(0, EVENTS // 2, 5000):
        log.append([to_outgoing(codec, e) for i in range(start, start + 5000) for e in events(i)])
    base = redis_url.rsplit("/", 1)[0] + "/4"
    na, nb = pa.replace(".", ":"), "clean" + pa.replace(".", ":")

    # The clean fold reads the same log (the views keep each event's recorded time, which the
    # broker stamped: a second log with the same bytes would have other times).
    clean_views = RedisViewStore(base, namespace=nb)
    Projector(log, clean_views, codec).run()
    clean = clean_views.snapshot()

    env = clean_env(
        KEEL_HOME=str(tmp_path),
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={pa}",
        KEEL_VIEWS=f"{base}?namespace={na}",
    )
    probe = RedisViewStore(base, namespace=na)
    killed = kill_repeatedly(
        env,
        lambda: int((probe.get("projector:stats") or {}).get("applied", 0)),
        EVENTS,
        KILLS,
        seed=21,
        budget_s=900,
    )
    views = RedisViewStore(base, namespace=na)
    Projector(log, views, codec).run()
    after = views.snapshot()

    assert killed == KILLS, f"only {killed} kills landed before the fold finished"
    assert after["docs"]["projector:stats"]["applied"] == EVENTS  # each event exactly once
    # Trees are per partition, so however partitions interleaved across restarts, every leaf
    # was added exactly once and in order: the trees equal the clean fold's.
    assert after["docs"]["audit:trees"] == clean["docs"]["audit:trees"]
    assert after["docs"] == clean["docs"]
    assert after["indexes"] == clean["indexes"]
    assert after["tracking"] == clean["tracking"]
    assert after["sets"] == clean["sets"]
    for v in (views, clean_views):
        v.clear()
    log.close()
