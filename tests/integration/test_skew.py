"""Training/serving skew, live: `keel serve` keeps bounded statistics of what it is asked and
records them; `keel audit skew` compares them with the serving model's training features and
records a drift beyond the thresholds, which `why` then shows."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import keel_services
from keel.artifacts.codeversion import code_version
from keel.bootstrap import bootstrap
from keel.events import decode_event
from keel.project import load_project
from keel.settings import Settings
from keel.skew import MIN_VALUES, SAMPLE, Window, psi
from keel_services.entrypoints.demo.story import monthly_batches
from keel_services.serve.app import Server, create_app
from tests.demo_home import demo_home, demo_settings
from tests.subscriptions import FAMILY as SUBS
from tests.subscriptions import payload, subscription_home, table

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "breast_cancer"


def rows(scale: float = 1.0) -> list[dict[str, Any]]:
    out = []
    for batch in monthly_batches()[1]:
        for r in batch:
            r = {k: v for k, v in r.items() if k not in ("record_id", "malignant")}
            r["mean_radius"] = float(r["mean_radius"]) * scale
            out.append(r)
    return out


def test_a_window_stays_bounded_whatever_the_traffic() -> None:
    w = Window()
    tracemalloc.start()
    for i in range(20_000):
        w.add({"a": float(i), "b": None, "c": 1.0})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    doc = w.doc()
    assert doc["requests"] == 20_000 and len(doc["features"]["a"]["sample"]) == SAMPLE
    assert doc["features"]["b"]["nulls"] == 20_000 and peak < 1 << 20
    assert "values" not in doc["features"]["a"] and doc["features"]["c"]["values"] == {"1": 20_000}
    shares = [0.05, 0.2, 0.25, 0.25, 0.2, 0.05]
    assert psi(shares, shares) == 0.0  # the same distribution
    assert psi(shares, [0, 0, 0, 0, 0, 1.0]) > 1  # all mass beyond p95


def test_serving_drift_is_measured_recorded_and_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo, env = demo_home(tmp_path / "d")
    for k in ("KEEL_HOME", "KEEL_PROJECT", "KEEL_KEYS_DIR"):
        monkeypatch.setenv(k, env[k])
    with bootstrap(Settings(home=Path(demo["home"])), create=False) as rt:
        server = Server(rt, load_project(Path(demo["project"])), FAMILY, "prod")
        c = TestClient(create_app(server))
        url = f"/v1/models/{FAMILY}/predict"
        for r in rows()[:200]:
            assert c.post(url, json=r).status_code == 200
        calm = server.record_window()
        assert calm is not None and calm.requests == 200
        with keel_services.Client() as k:
            steady = k.skew(FAMILY, "prod")
        assert steady["window"]["event_id"] == calm.envelope.event_id
        assert "mean_radius" not in steady["drifting"]
        for r in rows(scale=1.6)[:200]:  # the radius measured in other units, say
            assert c.post(url, json=r).status_code == 200
        server.record_window()
    drifted = subprocess.run(
        [KEEL, "audit", "skew", "--family", FAMILY, "--env", "prod", "--json"],
        capture_output=True,
        text=True,
    )
    assert drifted.returncode == 1, drifted.stderr
    doc = json.loads(drifted.stdout)
    assert "mean_radius" in doc["drifting"] and doc["drift_event_id"]
    worst = next(f for f in doc["features"] if f["feature"] == "mean_radius")
    assert worst["psi"] >= 0.2 and worst["pvalue"] < 0.001 and worst["test"] == "ks"
    again = subprocess.run(
        [KEEL, "audit", "skew", "--family", FAMILY, "--env", "prod", "--json"],
        capture_output=True,
        text=True,
    )
    assert json.loads(again.stdout)["drift_event_id"] == doc["drift_event_id"]  # recorded once
    why = subprocess.run(
        [KEEL, "audit", "why", "--family", FAMILY, "--env", "prod", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    steps = {s["step"]: s for s in json.loads(why.stdout)["steps"]}
    assert steps["drift"]["event_id"] == doc["drift_event_id"]
    assert "mean_radius" in {f["feature"] for f in steps["drift"]["features"]}
    # Both records carry the serve service's code version (issue 35): the window's statistics
    # and the drift judged on them were stamped with the library's alone before
    serve_version = code_version("keel_services.serve", "keel")
    assert serve_version != code_version("keel")
    assert calm.envelope.producer.code_version == serve_version
    with bootstrap(Settings(home=Path(demo["home"])), create=False) as rt:
        (drift,) = [
            e
            for e in (decode_event(rt.codec, r.value) for r in rt.log.read())
            if e.envelope.event_id == doc["drift_event_id"]
        ]
    assert drift.EVENT_TYPE == "DriftDetected"
    assert drift.envelope.producer.code_version == serve_version


def audit_skew(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(
        [KEEL, "audit", "skew", "--family", SUBS, "--env", "prod", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_the_training_month_replayed_through_serve_is_calm_and_real_shifts_are_caught(
    tmp_path: Path,
) -> None:
    """Issue 34's report, through `keel serve` and `keel audit skew` on a family `keel init`
    made from a subscription table: the plan one-hot, a seat count and continuous features."""
    made, env = subscription_home(tmp_path / "s")
    with bootstrap(demo_settings(made), create=False) as rt:
        server = Server(rt, load_project(Path(made["project"])), SUBS, "prod")
        c = TestClient(create_app(server))
        url = f"/v1/models/{SUBS}/predict"

        def window(rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
            for r in rows:
                assert c.post(url, json=payload(r)).status_code == 200
            assert server.record_window() is not None
            return audit_skew(env)

        code, tiny = window(made["train"][:10])
        assert code == 0 and tiny["drifting"] == [] and tiny["drift_event_id"] is None
        assert tiny["note"].startswith(f"too few requests to judge: 10 of {MIN_VALUES}")
        assert {f["note"] for f in tiny["features"]} == {
            f"too few requests to judge: 10 of {MIN_VALUES}"
        }

        code, calm = window(made["train"][:400])
        assert code == 0 and calm["drifting"] == [] and calm["note"] is None, calm
        kinds = {f["feature"]: f["kind"] for f in calm["features"]}
        assert kinds["plan=enterprise"] == "binary" and kinds["seats"] == "discrete"
        assert kinds["usage_ratio"] == kinds["monthly_spend"] == "continuous"
        assert all(f["psi"] < 0.1 for f in calm["features"]), calm["features"]

        shifted = table(400, seed=9, enterprise=0.45, seats_p=0.6, spend_scale=1.6)
        code, drifted = window(shifted)
    assert code == 1 and drifted["drift_event_id"]
    assert {"plan=enterprise", "seats", "monthly_spend"} <= set(drifted["drifting"])
    assert "usage_ratio" not in drifted["drifting"]
    # the recorded event (DriftDetected v2) names each feature's kind and test
    with bootstrap(demo_settings(made), create=False) as rt:
        doc = rt.views.get(f"drift:{drifted['drift_event_id']}")
    assert doc is not None
    tests = {f["feature"]: (f["kind"], f["test"]) for f in doc["features"]}
    assert tests["plan=enterprise"] == ("binary", "chi-square")
    assert tests["seats"] == ("discrete", "chi-square")
    assert tests["monthly_spend"] == ("continuous", "ks")
