"""OpenLineage: the demo's history exported as run events (file, HTTP like Marquez), and live
from a command with KEEL_OPENLINEAGE set.

The official JSON schema (spec/OpenLineage.json) is not on any package registry reachable here
(PyPI, npm, Maven Central, the Go proxy were searched), so the events are checked against the
spec's RunEvent rules as written there: required keys, UUID run IDs, ISO times, URIs, a START
and one COMPLETE/FAIL per run, facets carrying _producer and _schemaURL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from keel_services.entrypoints.demo.story import monthly_batches, write_csv
from tests.demo_home import demo_home

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))


@pytest.fixture(scope="module")
def demo_and_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    return demo_home(tmp_path_factory.mktemp("ol") / "d")


@pytest.fixture(scope="module")
def demo(demo_and_env: tuple[dict[str, Any], dict[str, str]]) -> dict[str, Any]:
    return demo_and_env[0]


@pytest.fixture(scope="module")
def demo_env(demo_and_env: tuple[dict[str, Any], dict[str, str]]) -> dict[str, str]:
    return demo_and_env[1]


def check_run_event(e: dict[str, Any]) -> None:
    """The spec's RunEvent: what every consumer (Marquez) relies on."""
    assert {"eventTime", "producer", "schemaURL", "run", "job", "eventType"} <= set(e)
    assert e["eventType"] in ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
    datetime.fromisoformat(e["eventTime"])
    assert urlparse(e["producer"]).scheme == "https"
    assert e["schemaURL"].startswith("https://openlineage.io/spec/")
    uuid.UUID(e["run"]["runId"])
    assert e["job"]["namespace"] and e["job"]["name"]
    for ds in [*e.get("inputs", []), *e.get("outputs", [])]:
        assert ds["namespace"] and ds["name"]
        for facets in (ds.get("facets", {}), ds.get("inputFacets", {}), ds.get("outputFacets", {})):
            for facet in facets.values():
                assert facet["_producer"] and facet["_schemaURL"]
    for facet in e["run"].get("facets", {}).values():
        assert facet["_producer"] and facet["_schemaURL"]


def test_the_history_exports_as_openlineage_run_events(
    demo: dict[str, Any], demo_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "lineage.jsonl"
    out = subprocess.run(
        [KEEL, "lineage", "export", "--openlineage", f"file:{path}", "--json"],
        capture_output=True,
        text=True,
        env=demo_env,
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(events) == json.loads(out.stdout)["run_events"] > 0
    for e in events:
        check_run_event(e)
    states = Counter((e["run"]["runId"], e["eventType"]) for e in events)
    runs = {r for r, _ in states}
    assert all(states[(r, "START")] == 1 and states[(r, "COMPLETE")] == 1 for r in runs)
    jobs = Counter(e["job"]["name"] for e in events if e["eventType"] == "COMPLETE")
    assert jobs["breast_cancer.ingest"] == 13 and jobs["breast_cancer.train"] == 6
    assert jobs["breast_cancer.promote"] == 12 and jobs["breast_cancer.deploy"] >= 4
    ingests = [e for e in events if e["job"]["name"].endswith(".ingest") and e["outputs"]]
    march = next(e for e in ingests if e["inputs"][0]["name"] == "2025-03.csv")
    out_ds = march["outputs"][0]
    assert out_ds["facets"]["keel_quarantine"]["quarantined"] == 4
    fields = {f["name"] for f in out_ds["facets"]["schema"]["fields"]}
    assert {"mean_radius", "malignant"} <= fields  # the training contract's fields
    train = next(e for e in events if e["job"]["name"].endswith(".train") and e["outputs"])
    dq = train["inputs"][0]["inputFacets"]["dataQualityMetrics"]
    assert dq["rowCount"] > 0 and "mean_radius" in dq["columnMetrics"]
    model = train["outputs"][0]["name"]
    assert model in set(demo["artifacts"])


def test_export_over_http_to_a_marquez_compatible_endpoint(demo_env: dict[str, str]) -> None:
    received: list[dict[str, Any]] = []

    class Lineage(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/api/v1/lineage"
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Lineage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        out = subprocess.run(
            [KEEL, "lineage", "export", "--openlineage", url, "--json"],
            capture_output=True,
            text=True,
            env=demo_env,
        )
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr
    assert len(received) == json.loads(out.stdout)["run_events"]
    for e in received:
        check_run_event(e)


def test_live_mode_sends_what_a_command_records(demo_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    rows = monthly_batches()[1][0]
    out = subprocess.run(
        [KEEL, "ingest", str(write_csv(tmp_path / "m.csv", rows)), "--family", "breast_cancer"],
        capture_output=True,
        text=True,
        env={**demo_env, "KEEL_OPENLINEAGE": f"file:{path}"},
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[-1]["job"]["name"] == "breast_cancer.ingest"
    assert events[-1]["inputs"][0]["name"] == "m.csv"
