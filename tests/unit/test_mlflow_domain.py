"""The MLflow bridge's pure rules: MLflow's signature (checked against the algorithm of
mlflow 3.17.2's webhooks/delivery.py), the timestamp window, parsing each registry event and
refusing others with a reason, names, deterministic IDs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from keel_services.mlflow_bridge import domain

pytestmark = pytest.mark.unit


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, payload: str) -> str:
    # mlflow.webhooks.delivery._generate_hmac_signature, as MLflow 3.17.2 writes it
    signed_content = f"{delivery_id}.{timestamp}.{payload}"
    mac = hmac.new(secret.encode("utf-8"), signed_content.encode("utf-8"), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("utf-8")


def body(entity: str, action: str, data: dict[str, object]) -> bytes:
    ts = "2026-03-01T12:00:00.123456+00:00"
    return json.dumps({"entity": entity, "action": action, "timestamp": ts, "data": data}).encode()


def test_signature_as_mlflow_computes_it() -> None:
    b = body("model_version_alias", "created", {"name": "m", "alias": "prod", "version": "1"})
    sig = mlflow_signature("k", "d1", "1700000000", b.decode())
    assert domain.expected_signature("k", "d1", "1700000000", b) == sig
    headers = {domain.SIGNATURE: sig, domain.DELIVERY_ID: "d1", domain.TIMESTAMP: "1700000000"}
    assert domain.authenticate(headers, b, "k") == ("d1", 1700000000)


@pytest.mark.parametrize(
    "change",
    [
        {domain.SIGNATURE: ""},
        {domain.SIGNATURE: "v1,AAAA"},
        {domain.DELIVERY_ID: "other"},
        {domain.TIMESTAMP: "1700000001"},
        {domain.TIMESTAMP: "soon"},
    ],
)
def test_wrong_or_missing_signature_is_unauthorized(change: dict[str, str]) -> None:
    b = b'{"x": 1}'
    headers = {
        domain.SIGNATURE: domain.expected_signature("k", "d1", "1700000000", b),
        domain.DELIVERY_ID: "d1",
        domain.TIMESTAMP: "1700000000",
        **change,
    }
    with pytest.raises(domain.Unauthorized) as err:
        domain.authenticate(headers, b, "k")
    assert "k" not in str(err.value).split()  # the secret is never in a message


def test_tampered_body_is_unauthorized() -> None:
    b = b'{"x": 1}'
    sig = domain.expected_signature("k", "d1", "1700000000", b)
    headers = {domain.SIGNATURE: sig, domain.DELIVERY_ID: "d1", domain.TIMESTAMP: "1700000000"}
    with pytest.raises(domain.Unauthorized):
        domain.authenticate(headers, b'{"x": 2}', "k")


def test_window() -> None:
    assert domain.fresh(1000, 1000 + domain.WINDOW_S)
    assert not domain.fresh(1000, 1001 + domain.WINDOW_S)
    assert not domain.fresh(1000 + domain.WINDOW_S + 1, 1000)  # from the future too


def test_parse_each_registry_event() -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    cases = {
        ("registered_model", "created"): (
            {"name": "m", "tags": {"a": "b"}, "description": None},
            domain.ModelRegistered("m", {"a": "b"}, None),
        ),
        ("model_version", "created"): (
            {"name": "m", "version": "3", "source": "s3://x", "run_id": "r", "tags": {}},
            domain.VersionCreated("m", "3", "s3://x", "r", {}, None),
        ),
        ("model_version_tag", "set"): (
            {"name": "m", "version": "3", "key": "k", "value": "v"},
            domain.TagSet("m", "3", "k", "v"),
        ),
        ("model_version_alias", "created"): (
            {"name": "m", "alias": "prod", "version": "3"},
            domain.AliasSet("m", "prod", "3"),
        ),
        ("model_version_alias", "deleted"): (
            {"name": "m", "alias": "prod"},
            domain.AliasDeleted("m", "prod"),
        ),
    }
    for (entity, action), (data, fact) in cases.items():
        assert domain.parse(body(entity, action, data)) == domain.Delivery(fact, at)


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"{not json", "MalformedBody", "not JSON"),
        (b"[]", "MalformedBody", "`data` object"),
        (body("experiment", "created", {}), "UnknownEventType", "'experiment.created'"),
        (body("model_version_alias", "created", {"name": "m"}), "MalformedBody", "data.alias"),
        (
            body(
                "model_version", "created", {"name": "m", "version": "1", "source": "s", "tags": 3}
            ),
            "MalformedBody",
            "data.tags",
        ),
    ],
)
def test_bad_bodies_name_what_is_wrong(raw: bytes, error: str, words: str) -> None:
    with pytest.raises(domain.Malformed) as err:
        domain.parse(raw)
    assert err.value.error == error and words in err.value.reason


def test_names_and_ids() -> None:
    names = domain.Names({"churn-model": "churn"}, {"champion": "prod"})
    assert (names.family("churn-model"), names.family("other")) == ("churn", "other")
    assert (names.env("champion"), names.env("staging")) == ("prod", "staging")
    assert domain.event_id("d", 0) == domain.event_id("d", 0) != domain.event_id("d", 1)
    assert "history before 2026-03-01" in domain.import_note(datetime(2026, 3, 1, tzinfo=UTC))
