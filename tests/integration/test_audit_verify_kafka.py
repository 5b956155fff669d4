"""`keel audit verify` on Kafka: the chain is re-walked through the broker, and each way a
Kafka log can be altered is caught:

- deleted:   DeleteRecords on a partition (the admin API a broker operator has) -> "missing";
- inserted:  a forged copy of a link appended to the audit topic -> "inserted";
- tampered:  the topics rewritten with one event's bytes altered -> "tampered";
- reordered: the audit topic rewritten with two links swapped -> "reordered".

A rewrite copies every partition record by record into a fresh set of topics, with one
transaction per run of consecutive offsets, so the copy keeps the original offsets exactly
(each transaction's commit marker takes the one offset between runs)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import LogRecord
from keel.schemas.registry import load_registry
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
Edit = Callable[[list[LogRecord]], list[LogRecord]]


def verify(kafka: str, prefix: str, home: Path) -> tuple[int, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_BUS=f"kafka://{kafka}?prefix={prefix}")
    out = subprocess.run(
        [KEEL, "audit", "verify", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    return out.returncode, json.loads(out.stdout)


def rewrite(kafka: str, src: KafkaEventLog, edits: dict[str, Edit]) -> str:
    """Copy every topic of `src` into a fresh prefix, offsets kept; edits[topic] may change a
    topic's records (same count, same offsets) on the way."""
    from confluent_kafka import Producer

    prefix = new_prefix()
    KafkaEventLog(kafka, prefix=prefix).close()  # creates the topics, same partitions
    producer = Producer(
        {"bootstrap.servers": kafka, "transactional.id": f"rewrite-{prefix}", "acks": "all"}
    )
    producer.init_transactions(30)
    for topic in [*EVENT_TOPICS, AUDIT_TOPIC]:
        records = list(src.read([topic]))
        records = edits.get(topic, lambda rs: rs)(records)
        for part, recs in groupby(
            sorted(records, key=lambda r: (r.partition, r.offset)), key=lambda r: r.partition
        ):
            run: list[LogRecord] = []
            for r in recs:
                if run and r.offset != run[-1].offset + 1:
                    _produce(producer, prefix + topic, part, run)
                    run = []
                run.append(r)
            if run:
                _produce(producer, prefix + topic, part, run)
    copy = KafkaEventLog(kafka, prefix=prefix)
    for topic in [*EVENT_TOPICS, AUDIT_TOPIC]:  # the copy is faithful where it was not edited
        want = sorted((r.partition, r.offset) for r in src.read([topic]))
        assert sorted((r.partition, r.offset) for r in copy.read([topic])) == want
    copy.close()
    return prefix


def _produce(producer: Any, topic: str, part: int, run: list[LogRecord]) -> None:
    producer.begin_transaction()
    for r in run:
        producer.produce(topic, r.value, r.key.encode(), partition=part, timestamp=r.timestamp_ms)
    producer.commit_transaction(30)


@pytest.fixture(scope="module")
def chained(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    codec = Codec(load_registry())
    prefix = new_prefix()
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    for start in range(0, 200, 50):  # several appends: several transactions per partition
        log.append([to_outgoing(codec, e) for i in range(start, start + 50) for e in events(i)])
    views = SqliteViewStore(tmp_path_factory.mktemp("v") / "views.db")
    Projector(log, views, codec, batch_size=150).run()
    log.close()
    return prefix


def _flip(records: list[LogRecord], i: int) -> list[LogRecord]:
    r = records[i]
    value = bytearray(r.value)
    value[-3] ^= 0x01
    return [*records[:i], dataclasses.replace(r, value=bytes(value)), *records[i + 1 :]]


def _swap(records: list[LogRecord], i: int) -> list[LogRecord]:
    a, b = records[i], records[i + 1]
    return [
        *records[:i],
        dataclasses.replace(a, value=b.value),
        dataclasses.replace(b, value=a.value),
        *records[i + 2 :],
    ]


def test_an_intact_chain_verifies_through_the_broker(
    chained: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    code, doc = verify(kafka_bootstrap, chained, tmp_path)
    assert code == 0 and doc == {"ok": True, "links": 400, "events": 400, "break": None}


def test_tampered_event_in_a_rewritten_topic(
    kafka_bootstrap: str, chained: str, tmp_path: Path
) -> None:
    src = KafkaEventLog(kafka_bootstrap, prefix=chained, provision_topics=False)
    forged = rewrite(kafka_bootstrap, src, {"deployments": lambda rs: _flip(rs, 7)})
    src.close()
    code, doc = verify(kafka_bootstrap, forged, tmp_path)
    assert code == 1 and doc["break"]["kind"] == "tampered", doc


def test_reordered_links_in_a_rewritten_audit_topic(
    kafka_bootstrap: str, chained: str, tmp_path: Path
) -> None:
    src = KafkaEventLog(kafka_bootstrap, prefix=chained, provision_topics=False)
    forged = rewrite(kafka_bootstrap, src, {AUDIT_TOPIC: lambda rs: _swap(rs, 10)})
    src.close()
    code, doc = verify(kafka_bootstrap, forged, tmp_path)
    assert code == 1 and doc["break"]["kind"] == "reordered", doc
    assert doc["break"]["position"] == 11


def test_records_deleted_by_the_admin_api(
    kafka_bootstrap: str, chained: str, tmp_path: Path
) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    src = KafkaEventLog(kafka_bootstrap, prefix=chained, provision_topics=False)
    copy = rewrite(kafka_bootstrap, src, {})  # attack a copy: the fixture stays intact
    src.close()
    log = KafkaEventLog(kafka_bootstrap, prefix=copy, provision_topics=False)
    first = next(r for r in log.read(["artifacts"]))
    log.close()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    futures = admin.delete_records(
        [TopicPartition(copy + "artifacts", first.partition, first.offset + 1)]
    )
    for f in futures.values():
        f.result(timeout=30)
    code, doc = verify(kafka_bootstrap, copy, tmp_path)
    assert code == 1 and doc["break"]["kind"] == "missing", doc


def test_forged_link_appended_to_the_audit_topic(
    kafka_bootstrap: str, chained: str, tmp_path: Path
) -> None:
    src = KafkaEventLog(kafka_bootstrap, prefix=chained, provision_topics=False)
    copy = rewrite(kafka_bootstrap, src, {})
    src.close()
    log = KafkaEventLog(kafka_bootstrap, prefix=copy, provision_topics=False)
    link = list(log.read([AUDIT_TOPIC]))[10]
    from keel.log.port import OutgoingEvent

    log.append([OutgoingEvent(AUDIT_TOPIC, link.key, link.timestamp_ms, link.value)])
    log.close()
    code, doc = verify(kafka_bootstrap, copy, tmp_path)
    assert code == 1 and doc["break"]["kind"] == "inserted", doc
