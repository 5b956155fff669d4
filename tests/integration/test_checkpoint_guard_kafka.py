"""Issue 33, item 3 on Kafka + Redis: the default local witness (outside KEEL_HOME) is an
anchor the log cannot take away. A publisher whose Redis views and audit-topic checkpoints were
lost still refuses a tree inconsistent with it; views folded past the last checkpoint (by a
reader without the audit key) are still checkpointed, the projector re-reading the partition
up to the anchor's size. Embedded: tests/e2e/test_checkpoint_guard.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.signing import Signer, create_key, load_private, load_trust
from keel.topics import AUDIT_TOPIC
from keel.views.redis import RedisViewStore
from tests.faults.test_projector_kill import events
from tests.infra import kafka_conf
from tests.integration.test_trail_kafka import Signed, keel, keel_env

pytestmark = pytest.mark.integration


def signed_log(kafka: str, redis_url: str, tmp: Path, n: int) -> tuple[Signed, dict[str, str]]:
    """A fresh prefix with its keyring recorded and n deployments signed; a checkpoint published
    by `keel audit project` (so the default local witness holds it)."""
    project, keys_dir = tmp / "keel.toml", tmp / "keys"
    project.write_text('[identities.t]\nemits = ["*"]\n')
    for identity in ("t", "audit"):
        create_key(identity, tmp / "keys.toml", keys_dir)
    s = Signed(new_prefix(), project, keys_dir, tmp / "unused.json")
    env = keel_env(kafka, redis_url, s, s.prefix, tmp / "home")
    assert keel(env, "keys", "record", "--reason", "test keys").returncode == 0
    append(kafka, s, range(n))
    out = keel(env, "audit", "project", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["checkpoint"], "the first project publishes a checkpoint"
    return s, env


def append(kafka: str, s: Signed, which: range) -> None:
    signer = Signer(
        load_trust(s.project.with_name("keys.toml"), s.project), load_private(s.keys_dir)
    )
    log = KafkaEventLog(kafka, prefix=s.prefix, provision_topics=False)
    codec = Codec(load_registry())
    log.append(sign_all(signer, codec, [e for i in which for e in events(i)]))
    log.close()


def test_lost_views_and_checkpoints_still_refuse_a_rewritten_tree(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    s, env = signed_log(kafka_bootstrap, redis_url, tmp_path, 40)
    log = KafkaEventLog(kafka_bootstrap, prefix=s.prefix, provision_topics=False)
    first = next(r for r in log.read(["artifacts"]))
    audit_ends = log.end_offsets([AUDIT_TOPIC])
    log.close()
    admin = AdminClient(kafka_conf(kafka_bootstrap))
    doomed = [TopicPartition(s.prefix + "artifacts", first.partition, first.offset + 1)]
    doomed += [TopicPartition(s.prefix + t, p, end) for (t, p), end in audit_ends.items() if end]
    for f in admin.delete_records(doomed).values():  # the history's start and every checkpoint
        f.result(timeout=30)
    lost = {**env, "KEEL_VIEWS": f"{redis_url}?namespace=lost{time.time_ns()}:"}  # views gone

    out = keel(lost, "audit", "project")
    assert out.returncode != 0
    assert "refusing to sign a checkpoint" in out.stderr and "default witness" in out.stderr
    log = KafkaEventLog(kafka_bootstrap, prefix=s.prefix, provision_topics=False)
    assert log.end_offsets([AUDIT_TOPIC]) == audit_ends  # nothing was signed
    log.close()
    out = keel(lost, "audit", "verify", "--json", "--skip", "artifacts")
    doc = json.loads(out.stdout)
    assert out.returncode == 1
    assert any(p["kind"] == "refused" for p in doc["problems"]), doc["problems"]


def test_views_folded_past_the_last_checkpoint_are_checkpointed(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    s, env = signed_log(kafka_bootstrap, redis_url, tmp_path, 30)
    append(kafka_bootstrap, s, range(30, 60))
    # a reader without the audit key folds the new events: the trees grow, nothing is signed
    log = KafkaEventLog(kafka_bootstrap, prefix=s.prefix, provision_topics=False)
    views = RedisViewStore(redis_url.split("?")[0], namespace=f"{s.prefix}views:")
    trust = load_trust(s.project.with_name("keys.toml"), s.project)
    grown = Projector(log, views, Codec(load_registry()), trust=trust).run()
    assert grown.applied == 60 and grown.checkpoint is None
    views.close()
    log.close()

    out = keel(env, "audit", "project", "--json")  # the anchor's root comes from the log
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["checkpoint"], "a checkpoint over the grown trees"
    out = keel(env, "audit", "verify", "--json", "--skip", "artifacts")
    assert out.returncode == 0, json.loads(out.stdout)["problems"]
