"""`keel serve`'s small answers, for a family a newcomer brings (tests/subscriptions.py): a wrong
family says which one is served and what to do, /metrics answers 200 at its bare path, and
extreme inputs get a 422 naming the features, never a 500."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keel.bootstrap import bootstrap
from keel.project import load_project
from keel_services.serve.app import Server, create_app
from tests.demo_home import demo_settings
from tests.subscriptions import FAMILY, payload, subscription_home

pytestmark = pytest.mark.integration
URL = f"/v1/models/{FAMILY}/predict"
AUTH = {"Authorization": "Bearer tok"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    made, _ = subscription_home(tmp_path_factory.mktemp("subs"))
    with bootstrap(demo_settings(made), create=False) as rt:
        server = Server(rt, load_project(Path(made["project"])), FAMILY, "prod")
        yield TestClient(create_app(server, token="tok"), follow_redirects=False), made


def test_a_row_gets_a_prediction(client: Any) -> None:
    c, made = client
    r = c.post(URL, json=payload(made["train"][0]), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["model_id"] == made["model_id"] and set(r.json()["probabilities"]) == {
        "no",
        "yes",
    }


def test_a_wrong_family_is_told_which_family_is_served_and_what_to_do(client: Any) -> None:
    c, made = client
    r = c.post("/v1/models/churn/predict", json=payload(made["train"][0]), headers=AUTH)
    assert r.status_code == 404, r.text
    doc = r.json()
    assert doc["families"] == [FAMILY] and "'churn'" in doc["detail"]
    assert f"/v1/models/{FAMILY}/predict" in doc["hint"]
    assert "keel serve --family churn --env prod" in doc["hint"]
    other = c.get("/v2/nothing", headers=AUTH)  # any unknown path lists what is served
    assert other.status_code == 404 and f"POST {URL}" in other.json()["routes"]


def test_metrics_answers_200_at_its_bare_path(client: Any) -> None:
    c, made = client
    c.post(URL, json=payload(made["train"][0]), headers=AUTH)
    assert c.get("/metrics").status_code == 401  # behind the token like every route
    r = c.get("/metrics", headers=AUTH)
    assert r.status_code == 200, (r.status_code, r.headers.get("location"))
    assert "keel_predict_seconds" in r.text and r.headers["content-type"].startswith("text/plain")
    assert c.get("/metrics/", headers=AUTH).status_code == 200  # the old path still answers


@pytest.mark.parametrize("value", [1e308, -1e308, 1e200, 3e38])
def test_extreme_inputs_get_a_finite_answer_or_a_422_naming_the_features(
    client: Any, value: float
) -> None:
    c, made = client
    body = {**payload(made["train"][0]), "monthly_spend": value, "usage_ratio": value}
    r = c.post(URL, json=body, headers=AUTH)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert all(math.isfinite(p) for p in r.json()["probabilities"].values())
    else:
        detail = r.json()["detail"]
        assert detail["features"] and set(detail["features"]) <= {"monthly_spend", "usage_ratio"}
        assert "the range it was trained on" in detail["detail"]


def test_every_field_at_1e308_gets_a_422_naming_the_fields_not_a_500(client: Any) -> None:
    """The report: every numeric field at 1e308 (a long field cannot hold it: its own 422)."""
    c, made = client
    body = {**payload(made["train"][0]), "monthly_spend": 1e308, "usage_ratio": 1e308}
    r = c.post(URL, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert set(r.json()["detail"]["features"]) == {"monthly_spend", "usage_ratio"}
    r = c.post(URL, json={**body, "seats": 1e308}, headers=AUTH)
    assert r.status_code == 422 and "seats" in {e["field"] for e in r.json()["detail"]}
