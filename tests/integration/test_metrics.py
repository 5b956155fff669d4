"""Prometheus metrics: consumer services serve /metrics on --metrics-port, HTTP services on
their own port (behind the token); scraped here as Prometheus would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from deploy.processes import free_port
from keel.bootstrap import bootstrap
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.demo.story import monthly_batches
from keel_services.serve.app import Server, create_app
from tests.demo_home import demo_home

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "breast_cancer"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a /metrics page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(page: dict[Any, float], name: str, **labels: str) -> float:
    found = [v for (n, ls), v in page.items() if n == name and labels.items() <= dict(ls).items()]
    assert found, f"no {name} {labels} on the page"
    return sum(found)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return demo_home(tmp_path_factory.mktemp("metrics") / "d")[0]


def test_serve_exposes_latency_status_codes_and_the_model_it_serves(demo: dict[str, Any]) -> None:
    with bootstrap(Settings(home=Path(demo["home"])), create=False) as rt:
        server = Server(rt, load_project(Path(demo["project"])), FAMILY, "prod")
        c = TestClient(create_app(server, token="tok"))
        auth = {"Authorization": "Bearer tok"}
        row = dict(monthly_batches()[0][0])
        row.pop("record_id"), row.pop("malignant")
        assert c.post(f"/v1/models/{FAMILY}/predict", json=row, headers=auth).status_code == 200
        bad = c.post(f"/v1/models/{FAMILY}/predict", json={**row, "mean_radius": "x"}, headers=auth)
        assert bad.status_code == 422
        assert c.get("/metrics/").status_code == 401  # the same token as every other route
        page = samples(c.get("/metrics/", headers=auth).text)
    assert value(page, "keel_predict_seconds_count", family=FAMILY, env="prod") >= 1
    assert value(page, "keel_http_responses_total", service="serve", status="200") >= 1
    assert value(page, "keel_http_responses_total", service="serve", status="422") >= 1
    served = server.current
    assert served is not None
    assert (
        value(
            page,
            "keel_model_served_info",
            family=FAMILY,
            env="prod",
            model_id=served.model_id,
            deployment_id=served.deployment_id,
        )
        == 1
    )


def test_consumer_services_expose_events_lag_gates_and_projector(
    demo: dict[str, Any], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=demo["home"],
        KEEL_PROJECT=demo["project"],
        KEEL_KEYS_DIR=demo["keys_dir"],
        KEEL_INLINE_SERVICES="false",
    )
    ports = {name: free_port() for name in ("feature", "train", "promote")}
    procs = [
        subprocess.Popen(
            [KEEL, "service", "run", name, "--metrics-port", str(port), "--max-idle", "120"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"{name}.log", "wb"),  # noqa: SIM115
        )
        for name, port in ports.items()
    ]

    def scrape(name: str) -> dict[Any, float]:
        url = f"http://127.0.0.1:{ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return samples(resp.read().decode())

    try:
        listed = json.loads(
            subprocess.run(
                [KEEL, "datasets", "list", "--family", FAMILY, "--json", "--limit", "20"],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        )
        ids = [d["id"] for d in listed["datasets"]]
        holdout, training = ids[-1], ids[:3]  # the oldest is the held-out set
        out = subprocess.run(
            [KEEL, "retrain", "--family", FAMILY, "--eval-dataset", holdout, "--json"]
            + [a for d in training for a in ("--dataset", d)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        deadline = time.monotonic() + 120  # bounded: the services react within it or fail
        page: dict[Any, float] = {}
        while time.monotonic() < deadline:
            try:
                page = scrape("promote")
                if any(n == "keel_gate_outcomes_total" for n, _ in page):
                    break
            except OSError:
                pass
            time.sleep(1)
        assert (
            value(
                page, "keel_events_processed_total", service="promote", event_type="ModelEvaluated"
            )
            >= 1
        )
        assert value(page, "keel_gate_outcomes_total", family=FAMILY, env="staging") >= 1
        feature = scrape("feature")
        assert (
            value(
                feature,
                "keel_events_processed_total",
                service="feature",
                event_type="RetrainRequested",
            )
            >= 1  # a new group starts at the log's beginning: the demo's requests, acted on once
        )
        assert (
            value(
                feature,
                "keel_events_published_total",
                service="feature",
                event_type="FeaturesBuilt",
            )
            == 2
        )
        assert any(n == "keel_consumer_lag" for n, _ in feature)
        train = scrape("train")
        assert (
            value(train, "keel_events_published_total", service="train", event_type="ModelTrained")
            == 1
        )
        assert value(train, "keel_projector_events_total") >= 1  # it folded the views itself
        assert value(train, "keel_projector_batch_seconds_count") >= 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
