"""The trust checks on Kafka + Redis: signed events through the broker (signature records in
record headers), trees and checkpoints over Kafka partitions, views in Redis. Each way a Kafka
log or its views can be altered is caught by `keel audit verify`:

- rewritten: a topic copied with one event's bytes altered, or two events of a partition
  swapped (each still validly signed: only the tree sees the order) -> "rewritten";
- deleted:   DeleteRecords on a partition (the admin API a broker operator has) -> "truncated";
- forged:    an unsigned ModelDeployed appended through the broker -> "unsigned", and never
  in an answer;
- views:     a deployment document rewritten in Redis -> "views altered";
- garbage:   undecodable bytes produced to a topic -> "undecodable".

A rewrite copies every partition record by record (headers too) into a fresh set of topics,
with one transaction per run of consecutive offsets, so the copy keeps the original offsets
exactly (each transaction's commit marker takes the one offset between runs)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.log.kafka import SIG_HEADER, KafkaEventLog, new_prefix
from keel.log.port import LogRecord
from keel.schemas.registry import load_registry
from keel.signing import Signer, create_key, load_private, load_trust
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS
from keel.views.redis import RedisViewStore
from tests import attacks
from tests.faults.test_projector_kill import events
from tests.infra import kafka_conf, redis_client

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
Edit = Callable[[list[LogRecord]], list[LogRecord]]


@dataclasses.dataclass
class Signed:
    prefix: str
    project: Path
    keys_dir: Path
    witness: Path


def keel_env(kafka: str, redis_url: str, s: Signed, prefix: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(home),
        KEEL_BUS=f"kafka://{kafka}?prefix={prefix}",
        KEEL_VIEWS=f"{redis_url}?namespace={prefix}views:",
        KEEL_PROJECT=str(s.project),
        KEEL_KEYS_DIR=str(s.keys_dir),
        KEEL_ADMIN_DIR=str(s.keys_dir.parent / "admin"),  # never in the home (decision 0022)
    )
    return env


def keel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEEL, *args], env=env, capture_output=True, text=True, timeout=300)


def verify(env: dict[str, str], *extra: str) -> tuple[int, dict[str, Any]]:
    # the synthetic events announce artifacts that no store holds: the catalog is left out
    out = keel(env, "audit", "verify", "--json", "--skip", "artifacts", *extra)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def kinds(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["area"], p["kind"]) for p in doc["problems"]}


@pytest.fixture(scope="module")
def signed(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signed]:
    tmp = tmp_path_factory.mktemp("trail")
    project, keys_dir = tmp / "keel.toml", tmp / "keys"
    project.write_text("# roles: the defaults\n")
    for identity in ("t", "audit"):
        create_key(identity, tmp / "keys.toml", keys_dir)
    project.write_text('[identities.t]\nemits = ["*"]\n')
    prefix = new_prefix()
    s = Signed(prefix, project, keys_dir, tmp / "witness.json")
    env = keel_env(kafka_bootstrap, redis_url, s, prefix, tmp / "home")
    # the keyring in the trail, signed by the admin key, as `keel keys create` records it: keys
    # that only keys.toml lists are keys anyone with file access could have added
    out = keel(env, "keys", "record", "--reason", "test keys")
    assert out.returncode == 0, out.stderr
    trust = load_trust(tmp / "keys.toml", project)  # now with the admin key's public half
    signer = Signer(trust, load_private(keys_dir))
    codec = Codec(load_registry())
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    for start in range(0, 200, 50):  # several appends: several transactions per partition
        log.append(
            sign_all(signer, codec, [e for i in range(start, start + 50) for e in events(i)])
        )
    views = RedisViewStore(redis_url.split("?")[0], namespace=f"{prefix}views:")
    Projector(log, views, codec, batch_size=150, signer=signer).run()
    views.close()
    log.close()
    out = keel(env, "audit", "checkpoint", "--to", str(s.witness))
    assert out.returncode == 0, out.stderr
    yield s


def rewrite(kafka: str, src: KafkaEventLog, edits: dict[str, Edit]) -> str:
    """Copy every topic of `src` into a fresh prefix, offsets and headers kept; edits[topic]
    may change a topic's records (same count, same offsets) on the way."""
    from confluent_kafka import Producer

    prefix = new_prefix()
    KafkaEventLog(kafka, prefix=prefix).close()  # creates the topics, same partitions
    producer = Producer(
        {**kafka_conf(kafka), "transactional.id": f"rewrite-{prefix}", "acks": "all"}
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
        headers = [(SIG_HEADER, r.sig)] if r.sig else None
        producer.produce(
            topic,
            r.value,
            r.key.encode(),
            partition=part,
            timestamp=r.timestamp_ms,
            headers=headers,
        )
    producer.commit_transaction(30)


def _copy(kafka: str, s: Signed, edits: dict[str, Edit] | None = None) -> str:
    src = KafkaEventLog(kafka, prefix=s.prefix, provision_topics=False)
    try:
        return rewrite(kafka, src, edits or {})
    finally:
        src.close()


def _flip(records: list[LogRecord], i: int) -> list[LogRecord]:
    r = records[i]
    value = bytearray(r.value)
    value[-3] ^= 0x01
    return [*records[:i], dataclasses.replace(r, value=bytes(value)), *records[i + 1 :]]


def _swap(records: list[LogRecord], i: int) -> list[LogRecord]:
    records = sorted(records, key=lambda r: (r.partition, r.offset))
    a, b = records[i], records[i + 1]
    assert a.partition == b.partition
    return [
        *records[:i],
        dataclasses.replace(a, value=b.value, sig=b.sig),
        dataclasses.replace(b, value=a.value, sig=a.sig),
        *records[i + 2 :],
    ]


def test_signed_events_verify_through_the_broker(
    signed: Signed, kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    env = keel_env(kafka_bootstrap, redis_url, signed, signed.prefix, tmp_path)
    code, doc = verify(env, "--checkpoint", str(signed.witness))
    assert code == 0, doc["problems"]
    # 400 events and the keyring's records (the admin, t and audit keys added)
    assert doc["events"] == doc["signed"] == 400 + doc["keyring"]["keys"]
    # the checkpoints' writer schema is on the schemas topic: readable without Keel's files
    log = KafkaEventLog(kafka_bootstrap, prefix=signed.prefix, provision_topics=False)
    fingerprint = load_registry().latest("Checkpoint").fingerprint_hex
    assert fingerprint in log.read_schemas()
    log.close()


def test_an_altered_event_in_a_rewritten_topic(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    forged = _copy(kafka_bootstrap, signed, {"deployments": lambda rs: _flip(rs, 7)})
    env = keel_env(kafka_bootstrap, redis_url, signed, forged, tmp_path)
    code, doc = verify(env, "--checkpoint", str(signed.witness))
    assert code == 1
    assert {("checkpoint", "rewritten"), ("signature", "bad-signature")} <= kinds(doc), doc


def test_two_validly_signed_events_swapped(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    forged = _copy(kafka_bootstrap, signed, {"artifacts": lambda rs: _swap(rs, 10)})
    env = keel_env(kafka_bootstrap, redis_url, signed, forged, tmp_path)
    code, doc = verify(env, "--checkpoint", str(signed.witness))
    assert code == 1
    assert ("checkpoint", "rewritten") in kinds(doc) and (
        "signature",
        "bad-signature",
    ) not in kinds(doc), doc


def test_a_faithful_copy_is_restamped(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    """Kafka's LogAppendTime cannot be edited in place; the only way to change a record's
    recorded time is to copy the topic, bytes, keys, headers and offsets kept, and let the
    broker stamp the copy (issue 33, item 1, on Kafka). Every answer's recorded times move
    with it; the leaves commit to the broker's timestamp (decision 0021), so every tree now
    disagrees with the witness, which before this passed verify."""
    copy = _copy(kafka_bootstrap, signed)
    log = KafkaEventLog(kafka_bootstrap, prefix=copy, provision_topics=False)
    src = KafkaEventLog(kafka_bootstrap, prefix=signed.prefix, provision_topics=False)
    a, b = next(iter(src.read(["deployments"]))), next(iter(log.read(["deployments"])))
    assert (a.offset, a.key, a.value, a.sig) == (b.offset, b.key, b.value, b.sig)
    assert 0 < a.recorded_ms < b.recorded_ms  # only the broker's stamp differs
    log.close()
    src.close()
    env = keel_env(kafka_bootstrap, redis_url, signed, copy, tmp_path)
    code, doc = verify(env, "--checkpoint", str(signed.witness))
    assert code == 1
    rewritten = {p["where"] for p in doc["problems"] if p["kind"] == "rewritten"}
    witnessed = {tree for tree, size in doc["trees"]["latest"].items() if size}
    assert any(w.startswith("deployments/") for w in rewritten), doc["problems"]
    assert witnessed == set(), "no tree of the copy meets the witness"
    assert len(rewritten) >= 3, doc["problems"]
    assert not [p for p in doc["problems"] if p["area"] == "signature"]


def test_records_deleted_by_the_admin_api(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    copy = _copy(kafka_bootstrap, signed)  # attack a copy: the fixture stays intact
    log = KafkaEventLog(kafka_bootstrap, prefix=copy, provision_topics=False)
    first = next(r for r in log.read(["artifacts"]))
    log.close()
    admin = AdminClient(kafka_conf(kafka_bootstrap))
    futures = admin.delete_records(
        [TopicPartition(copy + "artifacts", first.partition, first.offset + 1)]
    )
    for f in futures.values():
        f.result(timeout=30)
    env = keel_env(kafka_bootstrap, redis_url, signed, copy, tmp_path)
    code, doc = verify(env, "--checkpoint", str(signed.witness))
    assert code == 1 and ("checkpoint", "truncated") in kinds(doc), doc


def test_a_forged_deployment_through_the_broker(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    copy = _copy(kafka_bootstrap, signed)
    codec = Codec(load_registry())
    log = KafkaEventLog(kafka_bootstrap, prefix=copy, provision_topics=False)
    forged = attacks.forged_deployment(log, codec, "ab" * 32)
    log.append([forged])
    log.close()
    env = keel_env(kafka_bootstrap, redis_url, signed, copy, tmp_path)
    code, doc = verify(env)
    assert code == 1
    (bad,) = [p for p in doc["problems"] if p["area"] == "signature"]
    assert bad["kind"] == "unsigned" and "mallory" in bad["detail"]
    out = keel(env, "audit", "serving", "--family", "f", "--env", "prod", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serving"]["model_id"] != "ab" * 32


def test_views_rewritten_in_redis_and_garbage_in_a_topic(
    kafka_bootstrap: str, redis_url: str, signed: Signed, tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    copy = _copy(kafka_bootstrap, signed)
    env = keel_env(kafka_bootstrap, redis_url, signed, copy, tmp_path)
    # folds the copy into its own Redis namespace; the copy's records carry the broker's new
    # append times, which their leaves commit to (test_a_faithful_copy_is_restamped)
    assert {k for k in kinds(verify(env)[1]) if k[0] not in ("checkpoint", "keyring")} == set()
    r: Any = redis_client(redis_url)
    key = next(k for k in r.scan_iter(match=f"{copy}views:doc:deployment:*"))
    doc = json.loads(r.get(key))
    doc["model_id"] = "0" * 64
    r.set(key, json.dumps(doc))
    producer = Producer(kafka_conf(kafka_bootstrap))
    producer.produce(copy + "registry", b"\x00\x01garbage", b"x")
    producer.flush(30)
    code, doc = verify(env)
    assert code == 1
    assert {("views", "altered"), ("log", "undecodable")} <= kinds(doc), doc
