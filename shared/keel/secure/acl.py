"""Which principal may do what on Kafka: one declarative table, derived from the roles (which
event types each identity emits, keel.signing) and the topics table (where each type lives).

- a service principal WRITEs only the topics of the events it emits (and the schemas topic,
  where every writer announces its writer schemas), and READs every event topic, the audit
  topic and the schemas topic (services keep the read model they decide on);
- the projector alone WRITEs the audit topic;
- people share the `cli` principal (and the audit HTTP API acting for them): the topics any
  person's role may emit to (their own roles are checked on their signatures, which Kafka
  cannot see);
- nobody but the operator may create, delete or alter topics, delete records or touch ACLs:
  no DELETE, ALTER or ALTER_CONFIGS binding is ever generated.

Pure: `bindings(prefix)` returns the table for one topic prefix; provisioning applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keel.secure.credentials import OPERATOR, PEOPLE, PROJECTOR
from keel.signing import ADMIN_EVENTS, DEFAULT_ROLES
from keel.topics import AUDIT_TOPIC, EVENT_TOPICS, SCHEMAS_TOPIC, TOPIC_OF

# Event types a person may be given a role for (keel.toml [identities.NAME] emits = [...]).
PEOPLE_EMIT = ("ModelDeployed", "PromotionReviewed", "RetrainRequested", "DriftDetected")
SERVICES = ("ingest", "feature", "train", "promote", "deploy", "serve", "step", "mlflow_bridge")
# The audit HTTP API acts for people (approve, reject, deploy, roll back): it may write what
# they may. Its projector duty (keeping views fresh) runs as the projector when it holds that.
PEOPLE_APIS = ("audit",)


@dataclass(frozen=True, order=True)
class Binding:
    principal: str  # without "User:"
    resource: str  # topic | group | transactional_id
    name: str
    pattern: str  # literal | prefixed
    operation: str  # read | write | describe

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"User:{self.principal} {self.operation} {self.resource} {self.name}{star}"


def writes(roles: Mapping[str, Sequence[str]] | None = None) -> dict[str, set[str]]:
    """Logical topics each principal may write."""
    roles = roles or DEFAULT_ROLES
    out: dict[str, set[str]] = {}
    for who in SERVICES:
        out[who] = {TOPIC_OF[t] for t in roles.get(who, ())} | {SCHEMAS_TOPIC}
    # the keyring is written by a person holding the admin key (decision 0022)
    people = {*roles.get("cli", ()), *roles.get("contracts", ()), *PEOPLE_EMIT, *ADMIN_EVENTS}
    out[PEOPLE] = {TOPIC_OF[t] for t in people} | {SCHEMAS_TOPIC}
    # the projector: checkpoints, and the views snapshots it stores (their ArtifactRecorded)
    out[PROJECTOR] = {AUDIT_TOPIC, SCHEMAS_TOPIC} | {TOPIC_OF[t] for t in roles.get("audit", ())}
    for who in PEOPLE_APIS:
        out[who] = set(out[PEOPLE])
    return out


def bindings(prefix: str, roles: Mapping[str, Sequence[str]] | None = None) -> set[Binding]:
    readable = [*EVENT_TOPICS, AUDIT_TOPIC, SCHEMAS_TOPIC]
    out: set[Binding] = set()
    for who, topics in writes(roles).items():
        for t in topics:
            out.add(Binding(who, "topic", prefix + t, "literal", "write"))
        for t in readable:
            out.add(Binding(who, "topic", prefix + t, "literal", "read"))
        # Consumer groups are named prefix + group; transactional IDs keel-prefix+principal-*.
        out.add(Binding(who, "group", prefix, "prefixed", "read"))
        if topics:
            out.add(Binding(who, "transactional_id", f"keel-{prefix}{who}", "prefixed", "write"))
    return out


def principals() -> list[str]:
    """Every principal the launcher makes credentials for."""
    return sorted([*writes(), OPERATOR])
