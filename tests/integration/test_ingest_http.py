"""The ingest HTTP endpoint: same validation and quarantine as the CLI; hostile bodies never 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keel.bootstrap import bootstrap
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.bus import build_bus
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir
from keel_services.ingest.http import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    home, project = prepare_workdir(tmp_path / "wd")
    with bootstrap(Settings(home=home, bus="", views="")) as rt:
        ctx = build_bus(rt, load_project(project), actor="http-test").ctx
        yield TestClient(create_app(ctx, token="s3cret"))


AUTH = {"Authorization": "Bearer s3cret"}
URL = "/v1/families/breast_cancer/records"


def rows(n: int) -> list[dict[str, Any]]:
    return monthly_batches()[1][0][:n]


def test_json_array_and_json_lines_are_ingested(client: TestClient) -> None:
    batch = rows(10)
    batch[2] = {**batch[2], "mean_radius": "n/a"}
    r = client.post(URL, json=batch, headers=AUTH, params={"at": "2025-02-01", "period": "2025-02"})
    assert r.status_code == 200, r.text
    assert (r.json()["records_in"], r.json()["accepted"], r.json()["quarantined"]) == (10, 9, 1)
    body = "\n".join(json.dumps(x) for x in rows(4)) + "\n{broken\n"
    r = client.post(URL, content=body, headers={**AUTH, "content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["quarantined"] == 1 and r.json()["accepted"] == 4


def test_auth_is_required_when_a_token_is_set(client: TestClient) -> None:
    assert client.post(URL, json=rows(1)).status_code == 401
    assert (
        client.post(URL, json=rows(1), headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"", {}, 422),
        (b"   ", {}, 422),
        (b'{"not": "a list"}', {"content-type": "application/json"}, 422),
        (b"\x00\xff binary", {}, 422),  # NUL bytes: a binary body, refused with the reason
        (b"\xff binary", {}, 200),  # taken as one bad line: quarantined, not a crash
        (b"[" * 100_000, {}, 200),
        (json.dumps([{"mean_radius": 1e308 * 10}]).encode(), {}, 200),
        (json.dumps([[1, 2], "x", None, 3]).encode(), {"content-type": "application/json"}, 200),
        (json.dumps([{"record_id": "x" * 1_000_000}]).encode(), {}, 200),
        (b"a,b\n1,2\n", {"content-type": "text/csv"}, 415),  # say what it takes, not 422
        (b"[]", {"content-length": "12x"}, 400),
    ],
)
def test_hostile_bodies_never_500(
    client: TestClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = client.post(URL, content=body, headers={**AUTH, **headers})
    assert r.status_code == status, r.text
    if status == 200:
        doc = r.json()
        assert doc["records_in"] == doc["accepted"] + doc["quarantined"]


def test_error_bodies_never_name_the_servers_files(client: TestClient) -> None:
    for body in (b"[]", b"\x00 binary", b'{"records": []}'):
        r = client.post(URL, content=body, headers={**AUTH, "content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert "/tmp" not in r.text and "keel-ingest-" not in r.text and ".jsonl" not in r.text


def test_unknown_family_is_404(client: TestClient) -> None:
    r = client.post("/v1/families/nope/records", json=rows(1), headers=AUTH)
    assert r.status_code == 404 and "unknown family" in r.json()["detail"]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", ""])
def test_a_byte_order_mark_before_the_body_is_dropped(
    client: TestClient, content_type: str
) -> None:
    """Issue 34: a UTF-8 BOM before a JSON array turned two records into one quarantined."""
    batch = rows(2)
    if content_type.endswith("ndjson"):
        body = "\n".join(json.dumps(x) for x in batch).encode()
    else:
        body = json.dumps(batch).encode()
    headers = {**AUTH, "content-type": content_type} if content_type else AUTH
    r = client.post(URL, content=b"\xef\xbb\xbf" + body, headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["records_in"], r.json()["accepted"], r.json()["quarantined"]) == (2, 2, 0)


def test_the_answer_counts_quarantine_reasons(client: TestClient) -> None:
    batch = rows(6)
    for i in (1, 3, 4):
        batch[i] = {**batch[i], "mean_radius": "n/a"}
    batch[5] = {k: v for k, v in batch[5].items() if k != "malignant"}
    r = client.post(URL, json=batch, headers=AUTH)
    assert r.status_code == 200, r.text
    reasons = r.json()["quarantine_reasons"]
    assert [(x["field"], x["records"]) for x in reasons] == [("mean_radius", 3), ("malignant", 1)]
    assert all(x["rule"] and x["example"] for x in reasons)
