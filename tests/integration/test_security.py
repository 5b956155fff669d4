"""The secured stack, on the real servers the launcher starts: Kafka (TLS + SASL/SCRAM,
StandardAuthorizer, ACLs from keel.secure.acl), Redis (TLS, ACL users) and SeaweedFS (one
identity per service, write-once artifact buckets). Every refusal here is the server's."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy import security
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.secure import acl
from keel.secure.credentials import secrets_for, split_address
from tests.infra import kafka_conf

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
SERVICE_PRINCIPALS = [*acl.SERVICES, "projector", "audit", "cli"]
_ACL_FIELDS = (
    "restype",
    "name",
    "resource_pattern_type",
    "principal",
    "host",
    "operation",
    "permission_type",
)


@pytest.fixture(scope="module")
def prefix(kafka_bootstrap: str) -> str:
    p = new_prefix()
    KafkaEventLog(kafka_bootstrap, prefix=p).close()  # topics and ACLs, as the operator
    return p


def produce(bootstrap: str, principal: str, topic: str) -> str | None:
    """Produce one record as `principal`; the delivery error's name, or None if stored."""
    from confluent_kafka import Producer

    errors: list[Any] = []
    p = Producer({**kafka_conf(bootstrap, principal), "message.timeout.ms": 30000})
    p.produce(topic, b"x", b"k", on_delivery=lambda err, msg: errors.append(err))
    p.flush(40)
    return errors[0].name() if errors and errors[0] is not None else None


def test_kafka_refuses_clients_without_credentials(kafka_bootstrap: str) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    plain = AdminClient({"bootstrap.servers": kafka_bootstrap, "log_level": 0})
    with pytest.raises(KafkaException):
        plain.list_topics(timeout=5)  # PLAINTEXT against the TLS listener: no answer
    wrong = {**kafka_conf(kafka_bootstrap, "promote"), "sasl.password": "guess", "log_level": 0}
    with pytest.raises(KafkaException):
        AdminClient(wrong).list_topics(timeout=5)


def test_each_service_writes_only_its_own_topics(kafka_bootstrap: str, prefix: str) -> None:
    assert produce(kafka_bootstrap, "promote", prefix + "deployments") == (
        "TOPIC_AUTHORIZATION_FAILED"
    )
    assert produce(kafka_bootstrap, "promote", prefix + "registry") is None
    assert produce(kafka_bootstrap, "deploy", prefix + "deployments") is None
    assert produce(kafka_bootstrap, "ingest", prefix + "registry") == "TOPIC_AUTHORIZATION_FAILED"
    for who in SERVICE_PRINCIPALS:  # the projector alone writes the audit topic
        got = produce(kafka_bootstrap, who, prefix + "audit")
        assert got == (None if who == "projector" else "TOPIC_AUTHORIZATION_FAILED"), who


def test_acls_are_in_force_when_provisioning_returns(kafka_bootstrap: str) -> None:
    """The broker applies new ACLs a moment after it answers CreateAcls (KRaft replays them
    into its authorizer): a service producing right after `keel topics apply` was refused with
    TOPIC_AUTHORIZATION_FAILED, which no client retries (5 produces of 6 right after
    provisioning, on the test broker; test_each_service_writes_only_its_own_topics failed so).
    Provisioning returns once they are in force."""
    for _ in range(3):
        p = new_prefix()
        KafkaEventLog(kafka_bootstrap, prefix=p).close()
        assert produce(kafka_bootstrap, "promote", p + "registry") is None


def test_no_service_deletes_records_or_alters_topics(kafka_bootstrap: str, prefix: str) -> None:
    from confluent_kafka import KafkaException, TopicPartition
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    assert produce(kafka_bootstrap, "deploy", prefix + "deployments") is None
    for who in SERVICE_PRINCIPALS:
        admin = AdminClient({**kafka_conf(kafka_bootstrap, who), "log_level": 0})
        for fut in admin.delete_records([TopicPartition(prefix + "deployments", 0, 1)]).values():
            with pytest.raises(KafkaException, match="AUTHORIZATION_FAILED"):
                fut.result()
        cut = ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource("topic", prefix + "deployments", incremental_configs=[cut])
        for fut in admin.incremental_alter_configs([res]).values():
            with pytest.raises(KafkaException, match="AUTHORIZATION_FAILED"):
                fut.result()
        for fut in admin.delete_topics([prefix + "registry"], operation_timeout=10).values():
            with pytest.raises(KafkaException, match="AUTHORIZATION_FAILED"):
                fut.result()


def test_topics_check_reports_acl_drift(kafka_bootstrap: str, tmp_path: Path) -> None:
    from confluent_kafka.admin import AclBindingFilter, AdminClient  # type: ignore[attr-defined]

    from keel.log import acls
    from keel.secure.acl import Binding

    p = new_prefix()
    env = {"KEEL_BUS": f"kafka://{kafka_bootstrap}?prefix={p}", "KEEL_HOME": str(tmp_path)}
    run_env = {**_base_env(), **env}
    assert _keel(["topics", "apply"], run_env).returncode == 0
    assert _keel(["topics", "check"], run_env).returncode == 0
    admin = AdminClient({**kafka_conf(kafka_bootstrap), "log_level": 0})
    # someone lets promote write deployments, and someone removed ingest's right to its topic
    sneaky = Binding("promote", "topic", p + "deployments", "literal", "write")
    admin.create_acls([acls._to_kafka(sneaky)])[acls._to_kafka(sneaky)].result()
    lost = Binding("ingest", "topic", p + "ingest", "literal", "write")
    k = acls._to_kafka(lost)
    gone = AclBindingFilter(*(getattr(k, a) for a in _ACL_FIELDS))
    for fut in admin.delete_acls([gone]).values():
        fut.result()
    acls.await_in_force(admin, p, present=[sneaky], absent=[lost])  # the broker applies later
    check = _keel(["topics", "check", "--json"], run_env)
    assert check.returncode == 1, check.stdout + check.stderr
    drift = json.loads(check.stdout)["drift"]
    assert {"topic": p, "item": "acl", "declared": "absent", "actual": str(sneaky)} in drift
    assert {"topic": p, "item": "acl", "declared": str(lost), "actual": "absent"} in drift
    applied = _keel(["topics", "apply", "--json"], run_env)
    assert f"allowed {lost}" in json.loads(applied.stdout)["changes"]


def test_redis_refuses_strangers_and_readers_cannot_write(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from keel.views.redis import RedisViewStore

    host, port = split_address(redis_url.split("//", 1)[1].split("/", 1)[0])
    secrets = secrets_for(host, port)
    assert secrets is not None
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(host=host, port=port, socket_timeout=5).ping()  # plaintext: no TLS, no talk
    tls = {"ssl": True, "ssl_ca_certs": str(secrets.ca), "socket_timeout": 5}
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=host, port=port, **tls).set(
            "keel:x", "1"
        )  # no AUTH: the default user is locked
    projector = redis.Redis(host=host, port=port, **secrets.redis("projector"))
    projector.set("keel:doc:probe", '{"a": 1}')
    reader = redis.Redis(host=host, port=port, **secrets.redis("reader"))
    assert reader.get("keel:doc:probe") == b'{"a": 1}'
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set("keel:doc:probe", "{}")
    with pytest.raises(redis.exceptions.NoPermissionError):
        projector.flushall()  # nobody empties the views with one command
    # a deployed service holds only its own secrets: the reader user, not the projector's
    monkeypatch.setenv("KEEL_SECRETS", str(security.holding(secrets.root, "serve", tmp_path)))
    store = RedisViewStore(redis_url)
    assert store.read_only and store.get("probe") == {"a": 1}


def test_object_store_keeps_artifacts_write_once(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from keel.artifacts.port import ArtifactSpec
    from keel.artifacts.s3 import S3ArtifactStore

    endpoint = s3_env["AWS_ENDPOINT_URL"]
    secrets = secrets_for(*split_address(endpoint.split("//", 1)[1]))
    assert secrets is not None
    cfg = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )

    def client(**keys: str) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=cfg,
            verify=str(secrets.ca),
            **keys,
        )

    assert endpoint.startswith("https://")  # the object store speaks TLS only
    plain = boto3.client(
        "s3",
        endpoint_url=endpoint.replace("https://", "http://"),
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=5),
        **secrets.s3("train"),
    )
    with pytest.raises(Exception):  # noqa: B017 (plain HTTP to a TLS port: no S3 answer at all)
        plain.list_objects_v2(Bucket="keel-test", MaxKeys=1)
    stranger = client(aws_access_key_id="nobody", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError):
        stranger.put_object(Bucket="keel-test", Key="x", Body=b"x")
    for k, v in {**s3_env, "KEEL_PRINCIPAL": "train"}.items():
        monkeypatch.setenv(k, v)
    prefix = new_prefix().strip(".")
    store = S3ArtifactStore(f"s3://keel-test/{prefix}")
    put = store.put_stream(ArtifactSpec("model", "c0de"), io.BytesIO(b"the recorded model"))
    key = store.key_of(put.info.id)
    for who in ("train", "deploy", "serve", "cli"):
        s3 = client(**secrets.s3(who))
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket="keel-test", Key=key)
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_bucket_policy(Bucket="keel-test")
        s3.put_object(Bucket="keel-test", Key=key, Body=b"swapped by " + who.encode())
        versions = s3.list_object_versions(Bucket="keel-test", Prefix=key)["Versions"]
        for v in versions:
            with pytest.raises(ClientError, match="AccessDenied"):
                s3.delete_object(Bucket="keel-test", Key=key, VersionId=v["VersionId"])
    fresh = S3ArtifactStore(f"s3://keel-test/{prefix}")
    assert fresh.read_bytes(put.info.id) == b"the recorded model"  # the first version


# -- helpers ---------------------------------------------------------------------------------
def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}


def _keel(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEEL, *args], env=env, capture_output=True, text=True, timeout=120)


def test_no_secret_reaches_a_log_or_the_event_log(
    kafka_bootstrap: str, redis_url: str, prefix: str
) -> None:
    """Passwords and keys are read when a client is made: none is in the servers' logs, the
    launcher's config files or any record on the topics."""
    secrets = secrets_for(*split_address(kafka_bootstrap))
    assert secrets is not None
    values = [secrets.secret("kafka", p) for p in secrets.principals("kafka")]
    values += [secrets.secret("redis", u) for u in secrets.principals("redis")]
    values += [k for p in secrets.principals("s3") for k in secrets.s3(p).values()]
    assert len(values) > 20
    base = secrets.root.parent  # pytest's base temp: the servers' directories beside it
    texts = [
        f.read_bytes()
        for pattern in ("*/kafka/logs/*", "*/kafka/server.properties", "*/redis/*.log")
        for f in base.glob(pattern)
        if f.is_file()
    ]
    assert texts, f"no server logs under {base}"
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix, provision_topics=False)
    texts += [r.value + (r.sig or b"") for r in log.read()]
    log.close()
    for v in values:
        assert not any(v.encode() in t for t in texts), "a secret was written out"
