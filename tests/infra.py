"""Real Kafka and Redis for tests, chosen in order: KEEL_KAFKA / KEEL_REDIS from the
environment; testcontainers when a Docker engine answers; else the local launcher on free ports.
A test that needs them and gets none fails; it never skips."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.kafka_broker import Kafka
from deploy.object_store import ObjectStore
from deploy.processes import free_port
from deploy.redis_server import Redis


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def stack_secrets(workdir: Path) -> Path:
    """One secrets directory for the session's servers (they sit side by side in pytest's base
    temp), as `make up` keeps one per stack: one CA, one file per principal."""
    return workdir.parent / "stack-secrets"


def kafka_conf(bootstrap: str, principal: str = "operator") -> dict[str, object]:
    """librdkafka settings for a raw client of the test broker as `principal` (the launcher's
    brokers are secured: TLS + SASL/SCRAM, ACLs)."""
    from keel.secure.credentials import secrets_for, split_address

    secrets = secrets_for(*split_address(bootstrap))
    conf: dict[str, object] = {"bootstrap.servers": bootstrap}
    return {**conf, **secrets.librdkafka(principal)} if secrets else conf


def redis_client(url: str, user: str = "projector") -> object:
    """A raw redis-py client of the test Redis as `user` (TLS and an ACL user when secured)."""
    from urllib.parse import urlparse

    import redis

    from keel.secure.credentials import secrets_for

    u = urlparse(url)
    secrets = secrets_for(u.hostname or "127.0.0.1", u.port or 6379)
    if secrets is None:
        return redis.Redis.from_url(url.split("?")[0])
    db = int((u.path or "/0").strip("/") or 0)
    return redis.Redis(host=u.hostname, port=u.port, db=db, **secrets.redis(user))


@contextmanager
def kafka_server(workdir: Path) -> Iterator[str]:
    """Yields a bootstrap address host:port."""
    if os.environ.get("KEEL_KAFKA"):
        yield os.environ["KEEL_KAFKA"].removeprefix("kafka://")
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kc:
            yield kc.get_bootstrap_server()
        return
    broker = Kafka(workdir / "kafka", free_port(), free_port(), secrets_dir=stack_secrets(workdir))
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yields a redis:// URL."""
    if os.environ.get("KEEL_REDIS"):
        yield os.environ["KEEL_REDIS"]
        return
    if docker_engine_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as rc:
            yield f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
        return
    server = Redis(workdir / "redis", free_port(), secrets_dir=stack_secrets(workdir)).start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def object_store(workdir: Path) -> Iterator[dict[str, str]]:
    """Yields the AWS_* variables of a real S3-compatible server: SeaweedFS from the launcher
    (built from source; no emulator), or the endpoint named by KEEL_S3 with AWS_* credentials
    from the environment."""
    if os.environ.get("KEEL_S3"):
        yield {
            "AWS_ENDPOINT_URL": os.environ["KEEL_S3"],
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
        return
    store = ObjectStore(workdir / "seaweedfs", free_port(), secrets_dir=stack_secrets(workdir))
    store.start()
    try:
        yield store.env()
    finally:
        store.stop()
