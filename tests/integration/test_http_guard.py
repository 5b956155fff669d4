"""Every HTTP service checks the token on the headers alone and limits streamed bodies: the
ingest and audit services here (serve in test_serve.py), over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.bootstrap import bootstrap
from keel.http_guard import bearer_ok
from keel.project import load_project
from keel.secure.tokens import TokenBook, new_token
from keel.settings import Settings
from keel_services.audit import http as audit_http
from keel_services.entrypoints.bus import build_bus
from keel_services.entrypoints.client import COMMANDS
from keel_services.entrypoints.demo.story import prepare_workdir
from keel_services.ingest import http as ingest_http
from tests.httpraw import chunked_post, served
from tests.integration.test_ingest_boundary import project

__all__ = ["project"]  # the fixture
pytestmark = pytest.mark.integration
CHUNK = b" " * (64 << 10)
# the audit API's commands need an act token ("s3cret" only reads there); ingest has one token
ACT_RECORD, ACT = new_token("act", "guard-test")
WRITER = {"ingest": "s3cret", "audit": ACT}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Any, str, int]]]:
    home, project = prepare_workdir(tmp_path_factory.mktemp("guard") / "wd")
    book = TokenBook(home.parent / "api-tokens.json", legacy_read="s3cret")
    book.add(ACT_RECORD)
    with bootstrap(Settings(home=home, bus="", views="")) as rt:
        ctx = build_bus(rt, load_project(project), actor="guard-test").ctx
        yield {
            "ingest": (
                ingest_http.create_app(ctx, token="s3cret"),
                "/v1/families/breast_cancer/records",
                ingest_http.MAX_BODY,
            ),
            "audit": (
                audit_http.create_app(rt, token="s3cret", tokens=book, commands=COMMANDS),
                "/v1/serving/breast_cancer/prod",
                audit_http.MAX_BODY,
            ),
        }


@pytest.mark.parametrize("service", ["ingest", "audit"])
def test_no_token_is_refused_before_the_body_is_read(apps: Any, service: str) -> None:
    app, path, _ = apps[service]
    with served(app) as port:
        r = chunked_post(
            port, path, {"Content-Type": "application/json"}, (CHUNK for _ in range(640))
        )
    assert r.status == 401, r.body
    assert r.sent < 4 << 20, f"{service}: sent {r.sent:,} bytes before the 401"


@pytest.mark.parametrize("service", ["ingest", "audit"])
def test_a_streamed_body_over_the_limit_is_413_at_once(apps: Any, service: str) -> None:
    app, path, limit = apps[service]
    chunks = (CHUNK for _ in range(limit // len(CHUNK) + 200))  # ~13 MB past the limit
    headers = {"Content-Type": "application/json", "Authorization": f"bearer {WRITER[service]}"}
    with served(app) as port:
        r = chunked_post(port, path, headers, chunks)
    assert r.status == 413, r.body
    assert r.sent < limit + (8 << 20), f"{service}: sent {r.sent:,} bytes before the 413"


def test_a_read_token_is_refused_before_the_body_is_read(apps: Any) -> None:
    app, path, _ = apps["audit"]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer s3cret"}
    with served(app) as port:
        r = chunked_post(port, path, headers, (CHUNK for _ in range(640)))
    assert r.status == 403 and b"needs a token of scope act" in r.body, r.body
    assert r.sent < 4 << 20, f"sent {r.sent:,} bytes before the 403"


def test_bearer_matching() -> None:
    assert bearer_ok("Bearer t", "t") and bearer_ok("bEaReR  t ", "t")
    assert not bearer_ok("Bearer", "t") and not bearer_ok("Basic t", "t")
    assert not bearer_ok("Bearer tt", "t") and not bearer_ok("", "t")


def test_extreme_offsets_and_times_are_422_with_the_reason(apps: Any) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(apps["audit"][0])
    auth = {"Authorization": "Bearer s3cret"}
    r = c.get("/v1/registry/breast_cancer", params={"offset": 2**63}, headers=auth)
    assert r.status_code == 422, r.text
    for at in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00+01:00", "yesterday"):
        r = c.get("/v1/serving/breast_cancer/prod", params={"at": at}, headers=auth)
        assert r.status_code == 422 and at in r.json()["detail"], r.text


def test_the_cli_explains_a_time_out_of_range(project: Path) -> None:
    from keel_services.entrypoints.demo.story import write_csv
    from tests.integration.test_ingest_boundary import good_rows, ingest_json, keel

    ingest_json(write_csv(project / "m.csv", good_rows()[:3]))
    for cmd in ("serving", "why"):
        code, out = keel(
            "audit", cmd, "--family", "breast_cancer", "--env", "prod",
            "--at", "9999-12-31T23:59:59-01:00",
        )  # fmt: skip
        assert code == 2 and "outside the times Keel records" in out, out
        assert "Traceback" not in out
