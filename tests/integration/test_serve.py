"""The serving boundary: payloads validated against a model derived from inference.avsc; valid,
invalid and hostile payloads; never a 500; token; readiness; hot swap on ModelDeployed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.bootstrap import bootstrap
from keel.events import decode_event
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.demo.story import FAMILY, monthly_batches
from keel_services.serve.app import Server, create_app
from tests.demo_home import demo_settings

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
URL = f"/v1/models/{FAMILY}/predict"
AUTH = {"Authorization": "Bearer tok"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    wd = tmp_path_factory.mktemp("serve")
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(wd / "d")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    doc["project"] = str(wd / "d" / "keel.toml")
    return doc


@pytest.fixture(scope="module")
def client(demo: dict[str, Any]) -> Iterator[tuple[TestClient, Server]]:
    with bootstrap(Settings(home=Path(demo["home"]), bus="", views=""), create=False) as rt:
        server = Server(rt, load_project(Path(demo["project"])), FAMILY, "prod")
        yield TestClient(create_app(server, token="tok")), server


def payload() -> dict[str, Any]:
    row = dict(monthly_batches()[0][0])
    row.pop("record_id")
    row.pop("malignant")
    return row


def test_valid_payload_gets_a_prediction_from_the_deployed_model(
    client: Any, demo: dict[str, Any]
) -> None:
    c, _ = client
    r = c.post(URL, json=payload(), headers=AUTH)
    assert r.status_code == 200, r.text
    prod = [d for d in demo["deployments"] if d["env"] == "prod"]
    assert r.json()["model_id"] == prod[-1]["model_id"] and 0 <= r.json()["probability"] <= 1
    assert c.get("/readyz").json()["ready"] is True


def test_token_is_required(client: Any) -> None:
    c, _ = client
    assert c.post(URL, json=payload()).status_code == 401
    assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mean_radius": "12.5"}, "mean_radius"),  # a string where the contract says double
        ({"mean_radius": -3.0}, "mean_radius"),  # below keel.min
        ({"mean_radius": None}, "mean_radius"),
        ({"extra": 1}, "extra"),
        ({"malignant": 1}, "malignant"),  # labels are not accepted for inference
        ({"mean_radius": True}, "mean_radius"),
        ({"mean_radius": "x" * 1_000_000}, "mean_radius"),
    ],
)
def test_invalid_payloads_get_field_level_422(
    client: Any, change: dict[str, Any], field: str
) -> None:
    c, _ = client
    r = c.post(URL, json={**payload(), **change}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["detail"]}


def test_missing_field_nan_infinity_huge_nested_and_wrong_content_type_never_500(
    client: Any,
) -> None:
    c, _ = client
    body = payload()
    del body["mean_texture"]
    assert c.post(URL, json=body, headers=AUTH).status_code == 422
    text = json.dumps(payload())
    for bad in (
        text.replace('"mean_radius": ', '"mean_radius": NaN, "x": ', 1),
        text.replace('"mean_area": ', '"mean_area": Infinity, "y": ', 1),
        text.replace('"mean_area": ', '"mean_area": 1e400, "z": ', 1),
        "[" * 100_000,
        "{" * 50_000,
        "not json",
        "",
    ):
        r = c.post(URL, content=bad, headers={**AUTH, "content-type": "application/json"})
        assert r.status_code in (400, 422), (bad[:40], r.status_code)
    r = c.post(URL, content=text, headers={**AUTH, "content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["detail"]
    r = c.post(URL, content=text, headers=AUTH)  # no content type at all
    assert r.status_code == 415


def test_bearer_scheme_is_case_insensitive(client: Any) -> None:
    """RFC 7235 section 2.1: the auth scheme is matched case-insensitively."""
    c, _ = client
    for scheme in ("bearer", "BEARER", "Bearer "):
        r = c.post(URL, json=payload(), headers={"Authorization": f"{scheme} tok"})
        assert r.status_code == 200, (scheme, r.text)
    assert c.post(URL, json=payload(), headers={"Authorization": "Basic tok"}).status_code == 401


def test_the_token_is_checked_before_the_body_and_streamed_bodies_are_limited(
    client: Any,
) -> None:
    """A 40 MB chunked body (no Content-Length): without the token the 401 comes from the headers
    alone; with it, the 413 comes as soon as the limit is passed, not after 40 MB."""
    from keel_services.serve.app import MAX_BODY
    from tests.httpraw import chunked_post, served

    c, _ = client
    chunk = b" " * (64 << 10)
    with served(c.app) as port:
        json_type = {"Content-Type": "application/json"}
        r = chunked_post(port, URL, json_type, (chunk for _ in range(640)))
        assert r.status == 401, r.body
        assert r.sent < 4 * MAX_BODY, f"sent {r.sent:,} bytes before the 401"
        r = chunked_post(port, URL, {**json_type, **AUTH}, (chunk for _ in range(640)))
        assert r.status == 413, r.body
        assert r.sent < 8 * MAX_BODY, f"sent {r.sent:,} bytes before the 413"
        assert b"limit" in r.body
        body = json.dumps(payload()).encode()  # a small chunked body still works
        r = chunked_post(port, URL, {**json_type, **AUTH}, [body[:100], body[100:]])
        assert r.status == 200, r.body


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=12),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
            max_leaves=10,
        ),
    )
)
def test_fuzzed_payloads_never_500(client: Any, junk: dict[str, Any]) -> None:
    c, _ = client
    body = json.dumps({**payload(), **junk})  # allow_nan: NaN/Infinity tokens are sent too
    r = c.post(URL, content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code in (200, 422), r.text


def test_non_finite_features_from_the_transform_are_a_422_naming_them(client: Any) -> None:
    """Finite inputs whose derived features overflow (worst_area / mean_area -> inf)."""
    c, _ = client
    body = {**payload(), "worst_area": 1e308, "mean_area": 1e-10}
    r = c.post(URL, json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert "worst_to_mean_area" in r.json()["detail"]["features"]


def test_hot_swap_on_a_new_deployment(client: Any, demo: dict[str, Any]) -> None:
    c, server = client
    before = c.post(URL, json=payload(), headers=AUTH).json()["model_id"]
    out = subprocess.run(
        [KEEL, "deploy", "rollback", "--family", FAMILY, "--env", "prod", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "KEEL_HOME": demo["home"],
            "KEEL_PROJECT": demo["project"],
            "KEEL_KEYS_DIR": demo["keys_dir"],
            "PATH": "",
        },
    )
    assert out.returncode == 0, out.stderr
    server.refresh()  # what the follower thread does every second
    after = c.post(URL, json=payload(), headers=AUTH).json()
    assert after["model_id"] == json.loads(out.stdout)["model_id"] != before


def test_serve_refuses_a_model_whose_bytes_fail_verification(tmp_path: Path) -> None:
    """The catalog is as writable as the blobs: serve checks the bytes against the digest the
    signed ArtifactRecorded states, refuses, and records why (ArtifactRejected)."""
    from keel.artifacts.store import ArtifactCorrupted
    from keel.events import decode_event
    from tests.attacks import swap_blob

    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    demo = json.loads(out.stdout)
    prod = [d["model_id"] for d in demo["deployments"] if d["env"] == "prod"]
    with bootstrap(demo_settings(demo), create=False) as rt:
        swap_blob(rt.artifacts, prod[-1], prod[0])
        with pytest.raises(ArtifactCorrupted):
            Server(rt, load_project(Path(demo["project"])), FAMILY, "prod")
        last = decode_event(rt.codec, list(rt.log.read(["artifacts"]))[-1].value)
    assert last.EVENT_TYPE == "ArtifactRejected"
    assert (last.artifact_id, last.action) == (prod[-1], "serve")
    assert last.envelope.producer.service == "serve"


def test_the_follower_survives_a_failed_hot_swap_and_readiness_says_why(tmp_path: Path) -> None:
    """The newly deployed model's blob is corrupted: the follower thread lives on, retries with
    backoff, /readyz is 503 naming the problem; once the bytes are restored it swaps."""
    from tests.attacks import put_blob, swap_blob
    from tests.demo_home import demo_home

    demo, env = demo_home(tmp_path)
    with bootstrap(demo_settings(demo), create=False) as rt:
        server = Server(rt, load_project(Path(demo["project"])), FAMILY, "prod")
        c = TestClient(create_app(server))
        before = server.current.model_id if server.current else ""
        out = subprocess.run(
            [KEEL, "deploy", "rollback", "--family", FAMILY, "--env", "prod", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        deployed = json.loads(out.stdout)["model_id"]
        good = rt.artifacts.path_of(deployed).read_bytes()
        swap_blob(rt.artifacts, deployed, before)  # the deployed model's bytes go bad
        thread = server.follow(every=0.05, max_backoff=0.2)
        try:
            ready = wait_for(lambda: c.get("/readyz"), lambda r: r.status_code == 503)
            assert "not serving the deployed model" in ready.json()["reason"]
            assert deployed[:16] in ready.json()["reason"] and ready.json()["serving"] == before
            assert c.post(URL, json=payload()).json()["model_id"] == before  # still answers
            time.sleep(0.5)  # several failed retries later
            assert thread.is_alive()
            put_blob(rt.artifacts, deployed, good)  # restored, catalog row included
            ready = wait_for(lambda: c.get("/readyz"), lambda r: r.status_code == 200)
            assert ready.json()["model_id"] == deployed
        finally:
            server.stop()
        rejected = [
            e
            for e in (decode_event(rt.codec, r.value) for r in rt.log.read(["artifacts"]))
            if e.EVENT_TYPE == "ArtifactRejected"
        ]
        assert len(rejected) == 1, "one refusal recorded, not one per retry"


def wait_for(probe: Any, done: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = probe()
        if done(got):
            return got
        time.sleep(0.05)
    pytest.fail(f"condition not reached in {seconds} s: last {got}")
