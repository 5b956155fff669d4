"""Kafka topics from one declarative table: `keel topics apply` creates them, `check` diffs them.

Event topics keep history forever (retention.ms=-1, cleanup.policy=delete: never compacted,
never expired). The schemas topic is compacted by fingerprint. Record timestamps are the events'
occurred_at (CreateTime): any past time is accepted, because backfilled facts are real facts;
the future is bounded to one hour of clock skew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.errors import KeelError
from keel.log import acls
from keel.secure.credentials import OPERATOR, Secrets
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS, SCHEMAS_TOPIC

NEVER = "-1"

_EVENT_CONFIG = {
    "retention.ms": NEVER,
    "retention.bytes": NEVER,
    "cleanup.policy": "delete",
    # Recorded time comes from the log, not the writer: the broker stamps each record when it
    # appends it. The business time (occurred_at) travels in the event's envelope.
    "message.timestamp.type": "LogAppendTime",
}


@dataclass(frozen=True)
class TopicSpec:
    name: str  # logical name; the physical name is prefix + name
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def declared_topics() -> list[TopicSpec]:
    # 3 partitions per context: keyed by subject, so each aggregate keeps its order.
    specs = [TopicSpec(t, 3, dict(_EVENT_CONFIG)) for t in EVENT_TOPICS]
    # The audit topic is one total order (hash-chained by the projector): one partition.
    specs.append(TopicSpec(AUDIT_TOPIC, 1, dict(_EVENT_CONFIG)))
    specs.append(
        TopicSpec(
            SCHEMAS_TOPIC,
            1,
            {
                "cleanup.policy": "compact",
                "retention.ms": NEVER,
                "message.timestamp.type": "CreateTime",
            },
        )
    )
    return specs


@dataclass(frozen=True)
class Drift:
    topic: str
    item: str
    declared: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.item} declared {self.declared}, actual {self.actual}"


def _admin(bootstrap: str, conf: dict[str, Any] | None = None) -> Any:
    from keel.extras import need

    need("kafka", "confluent_kafka")
    from confluent_kafka.admin import AdminClient

    # log_level 2: librdkafka would print every refused reconnect; failures surface as errors.
    return AdminClient(
        {**(conf or {}), "bootstrap.servers": bootstrap, "socket.timeout.ms": 10000, "log_level": 2}
    )


def operator_config(secrets: Secrets | None) -> dict[str, Any]:
    return secrets.librdkafka(OPERATOR) if secrets else {}


def check_reachable(
    bootstrap: str, conf: dict[str, Any] | None = None, timeout: float = 8.0
) -> None:
    """Fail within `timeout` seconds, naming the address, when no broker answers."""
    from keel.extras import need

    need("kafka", "confluent_kafka")
    from confluent_kafka import KafkaException

    try:
        _admin(bootstrap, conf).list_topics(timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0].str() if exc.args else str(exc)
        if conf and "SASL" in conf.get("security.protocol", ""):
            hint = (
                f"check the broker is up and that {conf.get('sasl.username')!r}'s password in "
                "the stack's secrets (KEEL_SECRETS or ~/.config/keel/clusters) is the broker's"
            )
        else:
            hint = (
                "start it (`make up`) or fix KEEL_BUS=kafka://host:port; a secured broker "
                "needs its secrets (KEEL_SECRETS or ~/.config/keel/clusters/HOST_PORT)"
            )
        raise KeelError(f"Kafka at {bootstrap} is unreachable ({err})", hint=hint) from None


def ensure(bootstrap: str, prefix: str, secrets: Secrets | None, principal: str) -> None:
    """A log opening on `prefix` as `principal`: provision its topics (and, secured, their
    ACLs) when this process may (an open broker, or the operator's credentials held, as on a
    developer's stack); else only check they exist, and say who must create them."""
    if secrets is None or secrets.has("kafka", OPERATOR):
        apply(bootstrap, prefix, secrets)
        return
    meta = _admin(bootstrap, secrets.librdkafka(principal)).list_topics(timeout=10).topics
    missing = [s.name for s in declared_topics() if prefix + s.name not in meta]
    if missing:
        raise KeelError(
            f"topics {', '.join(prefix + m for m in missing)} do not exist on {bootstrap} (or "
            f"{principal!r} may not see them)",
            hint="the operator creates them with their ACLs: `keel topics apply` with the "
            "operator's credentials",
        )


def apply(bootstrap: str, prefix: str, secrets: Secrets | None = None) -> list[str]:
    """Create missing topics and set declared configs on existing ones; on a secured broker
    also create the declared ACLs (keel.secure.acl). Returns what changed."""
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewTopic,
    )

    admin = _admin(bootstrap, operator_config(secrets))
    existing = set(admin.list_topics(timeout=10).topics)
    changes = []
    new = [
        NewTopic(prefix + s.name, s.partitions, 1, config=s.config)
        for s in declared_topics()
        if prefix + s.name not in existing
    ]
    if new:
        for name, fut in admin.create_topics(new, operation_timeout=30).items():
            try:
                fut.result()
                changes.append(f"created {name}")
            except Exception as exc:  # TOPIC_ALREADY_EXISTS from a concurrent apply is fine
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise KeelError(f"cannot create topic {name}: {exc}") from exc
    for drift in check(bootstrap, prefix, secrets):
        if drift.item == "acl":
            continue  # created below, all at once
        if drift.item == "partitions":
            raise KeelError(f"{drift}", hint="partitions can only grow; fix by hand if intended")
        if drift.item == "missing":
            continue
        # Incremental SET touches only the declared keys; anything else set by hand stays.
        res = ConfigResource(
            "topic",
            prefix + drift.topic,
            incremental_configs=[
                ConfigEntry(drift.item, drift.declared, incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for fut in admin.incremental_alter_configs([res]).values():
            fut.result()
        changes.append(f"set {prefix + drift.topic} {drift.item}={drift.declared}")
    if secrets is not None:
        changes += acls.apply(admin, prefix)
    return changes


def check(bootstrap: str, prefix: str, secrets: Secrets | None = None) -> list[Drift]:
    """Every difference between the declared tables (topics; ACLs on a secured broker) and
    the broker."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    admin = _admin(bootstrap, operator_config(secrets))
    meta = admin.list_topics(timeout=10).topics
    drifts: list[Drift] = []
    specs = declared_topics()
    resources = []
    for s in specs:
        name = prefix + s.name
        if name not in meta:
            drifts.append(Drift(s.name, "missing", "present", "absent"))
            continue
        actual = len(meta[name].partitions)
        if actual != s.partitions:
            drifts.append(Drift(s.name, "partitions", str(s.partitions), str(actual)))
        resources.append((s, ConfigResource("topic", name)))
    if resources:
        futures = admin.describe_configs([r for _, r in resources])
        for s, r in resources:
            entries = futures[r].result()
            for key, want in s.config.items():
                got = entries[key].value if key in entries else None
                if got != want:
                    drifts.append(Drift(s.name, key, want, str(got)))
    if secrets is not None:
        missing, extra = acls.drift(admin, prefix)
        drifts += [Drift(prefix, "acl", str(b), "absent") for b in missing]
        drifts += [Drift(prefix, "acl", "absent", str(b)) for b in extra]
    return drifts
