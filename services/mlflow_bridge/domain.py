"""MLflow registry deliveries as Keel facts, pure: signature, timestamp window, parsing, naming.

MLflow (3.x OSS) signs each webhook delivery with HMAC-SHA256 over
`{delivery_id}.{unix_timestamp}.{body}` and sends `v1,<base64>` in X-MLflow-Signature, the ID in
X-MLflow-Delivery-Id and the send time in X-MLflow-Timestamp; a retry resends the same bytes and
headers. The body is `{"entity", "action", "timestamp", "data"}`; `timestamp` (ISO 8601, UTC) is
when MLflow sent it, the nearest it says to when the registry changed: Keel's business time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keel.artifacts.ids import ArtifactSpec

SIGNATURE = "x-mlflow-signature"
DELIVERY_ID = "x-mlflow-delivery-id"
TIMESTAMP = "x-mlflow-timestamp"
WINDOW_S = 300  # a delivery signed longer ago than this is a replay (or a clock to fix)
MODEL_KIND = "model"
CODE_VERSION = "mlflow"  # what "made" a version: MLflow's registry, not Keel's code


class Unauthorized(Exception):
    """The delivery is not MLflow's: no or a wrong signature (HTTP 401)."""


class Malformed(Exception):
    """Signed, but not a registry event Keel can record: quarantined with this reason."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def authenticate(headers: Mapping[str, str], body: bytes, secret: str) -> tuple[str, int]:
    """(delivery ID, signed unix time) of a delivery whose signature is right, else
    Unauthorized. Compared in constant time; the secret never appears in a message."""
    given = headers.get(SIGNATURE, "")
    delivery_id = headers.get(DELIVERY_ID, "")
    stamp = headers.get(TIMESTAMP, "")
    if not given:
        raise Unauthorized("no X-MLflow-Signature header: create the webhook with a secret")
    if not delivery_id or not stamp.isdigit():
        raise Unauthorized("X-MLflow-Delivery-Id or X-MLflow-Timestamp missing or malformed")
    if not hmac.compare_digest(given, expected_signature(secret, delivery_id, stamp, body)):
        raise Unauthorized(
            "X-MLflow-Signature does not match: the webhook's secret differs from "
            "KEEL_MLFLOW_WEBHOOK_SECRET"
        )
    return delivery_id, int(stamp)


def fresh(signed_at: int, now: float, window_s: float = WINDOW_S) -> bool:
    """Signed within the window either side of now (MLflow's retries reuse the first
    attempt's time and give up within about two minutes)."""
    return abs(now - signed_at) <= window_s


# -- facts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRegistered:
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class VersionCreated:
    name: str
    version: str
    source: str
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class TagSet:
    name: str
    version: str
    key: str
    value: str


@dataclass(frozen=True)
class AliasSet:
    name: str
    alias: str
    version: str


@dataclass(frozen=True)
class AliasDeleted:
    name: str
    alias: str


Fact = ModelRegistered | VersionCreated | TagSet | AliasSet | AliasDeleted


@dataclass(frozen=True)
class Delivery:
    fact: Fact
    at: datetime  # business time: when MLflow says it sent the event


def _text(data: Mapping[str, Any], key: str, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise Malformed("MalformedBody", f"data.{key} is {value!r}: a non-empty string is needed")
    return value


def _tags(data: Mapping[str, Any]) -> dict[str, str]:
    tags = data.get("tags") or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise Malformed("MalformedBody", f"data.tags is {tags!r}: an object of strings is needed")
    return dict(tags)


def _fact(kind: str, data: Mapping[str, Any]) -> Fact:
    if kind == "registered_model.created":
        return ModelRegistered(
            _text(data, "name"), _tags(data), _text(data, "description", optional=True)
        )
    if kind == "model_version.created":
        return VersionCreated(
            _text(data, "name"),
            str(_text(data, "version")),
            _text(data, "source"),
            _text(data, "run_id", optional=True),
            _tags(data),
            _text(data, "description", optional=True),
        )
    if kind == "model_version_tag.set":
        return TagSet(
            _text(data, "name"), _text(data, "version"), _text(data, "key"), str(data.get("value"))
        )
    if kind == "model_version_alias.created":
        return AliasSet(_text(data, "name"), _text(data, "alias"), _text(data, "version"))
    if kind == "model_version_alias.deleted":
        return AliasDeleted(_text(data, "name"), _text(data, "alias"))
    raise Malformed(
        "UnknownEventType",
        f"event {kind!r} is not one Keel records: subscribe the webhook to "
        "registered_model.created, model_version.created, model_version_tag.set, "
        "model_version_alias.created and model_version_alias.deleted",
    )


def parse(body: bytes) -> Delivery:
    """The fact a delivery's body states, or Malformed naming what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed("MalformedBody", f"the body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise Malformed("MalformedBody", "the body is not an object with a `data` object")
    kind = f"{doc.get('entity')}.{doc.get('action')}"
    try:
        at = datetime.fromisoformat(str(doc.get("timestamp")))
    except ValueError:
        raise Malformed(
            "MalformedBody", f"timestamp {doc.get('timestamp')!r} is not ISO 8601"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Delivery(_fact(kind, doc["data"]), at)


# -- names ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    """keel.toml [mlflow] families / environments: MLflow names to Keel's (default: the same)."""

    families: Mapping[str, str] = field(default_factory=dict)
    environments: Mapping[str, str] = field(default_factory=dict)

    def family(self, model: str) -> str:
        return self.families.get(model, model)

    def env(self, alias: str) -> str:
        return self.environments.get(alias, alias)


def model_params(name: str, version: str) -> dict[str, str]:
    """What identifies a registered version (its artifact ID): MLflow never changes a version's
    source or run, so its name and number are enough, and an alias event (which carries only
    those) finds the same artifact."""
    return {"registry": "mlflow", "model": name, "version": version}


def model_id(name: str, version: str) -> str:
    """A registered version's artifact ID (kind model, from its name and number)."""
    return ArtifactSpec(MODEL_KIND, CODE_VERSION, model_params(name, version)).id


def version_document(fact: VersionCreated) -> dict[str, Any]:
    """The version's recorded bytes: source URI, run ID, tags and description as MLflow gave."""
    return {
        "registry": "mlflow",
        "model": fact.name,
        "version": fact.version,
        "source": fact.source,
        "run_id": fact.run_id,
        "tags": dict(sorted(fact.tags.items())),
        "description": fact.description,
    }


def event_id(delivery_id: str, n: int) -> str:
    """The n-th event of a delivery: the same on every retry, so a delivery recorded twice in a
    race is still folded once (duplicates are skipped by event ID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlflow-delivery:{delivery_id}/{n}"))


def cause(delivery_id: str) -> str:
    """Every event of a delivery names it as cause: how a replayed delivery is recognised."""
    return f"mlflow-delivery:{delivery_id}"


def import_note(at: datetime) -> str:
    return f"imported from MLflow at {at.isoformat()}: history before {at.isoformat()} unknown"
