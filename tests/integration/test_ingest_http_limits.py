"""Issue 33, item 8 over HTTP: a body is held to the project's [ingest] limits (its size, its
records), a JSON array body is decoded one element at a time, and a refused body records
nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keel.bootstrap import bootstrap
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.bus import build_bus
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir
from keel_services.ingest.http import create_app

pytestmark = pytest.mark.integration
AUTH = {"Authorization": "Bearer s3cret"}
URL = "/v1/families/breast_cancer/records"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    home, project = prepare_workdir(tmp_path / "wd")
    project.write_text(project.read_text() + "\n[ingest]\nmax_rows = 5\nmax_body_bytes = 20000\n")
    with bootstrap(Settings(home=home, bus="", views="")) as rt:
        ctx = build_bus(rt, load_project(project), actor="http-test").ctx
        yield TestClient(create_app(ctx, token="s3cret")), home


def stored(home: Path) -> int:
    return sum(1 for p in (home / "objects").rglob("*") if p.is_file())


@pytest.mark.parametrize("shape", ["array", "wrapped", "lines"])
def test_a_body_over_max_rows_is_refused_and_records_nothing(
    served: tuple[TestClient, Path], shape: str
) -> None:
    client, home = served
    rows = monthly_batches()[1][0][:6]
    body = {
        "array": json.dumps(rows),
        "wrapped": json.dumps({"records": rows}),
        "lines": "\n".join(json.dumps(r) for r in rows),
    }[shape]
    assert client.post(URL, content=json.dumps(rows[:5]), headers=AUTH).status_code == 200
    before = stored(home)
    r = client.post(URL, content=body, headers=AUTH)
    assert r.status_code == 422 and "more than 5 records" in r.text, r.text
    assert "max_rows under [ingest]" in r.text and "/tmp" not in r.text
    assert stored(home) == before


def test_a_body_over_max_body_bytes_is_413(served: tuple[TestClient, Path]) -> None:
    client, home = served
    r = client.post(URL, content=b"[" + b"{}," * 10_000 + b"{}]", headers=AUTH)
    assert r.status_code == 413, r.text
    assert stored(home) == 0
