"""Decisions are judged at their own business time, answered per environment, and say who
and why: a backdated gate reads the incumbent serving then (not today's), `why-promoted`
answers for every environment (or the one asked for), `keel deploy --reason` records the
reason on the deployment, and an actor nobody named is warned about.

A family the demo and the examples do not use: churn, a binary table from scikit-learn's
make_classification with string labels and an ID column, made with `keel init`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "churn"
NOW_TIME = "2026-02-01T00:00:00Z"  # the first model serves staging and prod from here
BACKDATED = "2025-01-31T00:00:00Z"  # a decision dated before anything served


def write_csvs(root: Path) -> dict[str, Path]:
    """Held-out, and two training batches (two retrains on different data, two models)."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=600, n_features=6, n_informative=4, class_sep=1.5, random_state=7
    )
    cols = [f"usage_{i}" for i in range(6)]
    rows = [
        [f"c{i:04d}", *(round(float(v), 5) for v in xi), "churned" if yi else "stayed"]
        for i, (xi, yi) in enumerate(zip(x, y, strict=True))
    ]
    parts = {"holdout": rows[:150], "batch_a": rows[150:375], "batch_b": rows[375:]}
    out = {}
    for name, chunk in parts.items():
        path = root / f"{name}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["customer_id", *cols, "status"])
            w.writerows(chunk)
        out[name] = path
    return out


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        self.env.update(
            KEEL_HOME=str(root / "home"),
            KEEL_PROJECT=str(root / "proj" / "keel.toml"),
            KEEL_KEYS_DIR=str(root / "keys"),
            KEEL_PRINCIPAL="operator",
            USER="carol",
        )

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [KEEL, *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            cwd=self.root,
            timeout=600,
        )

    def json(self, *args: str) -> Any:
        r = self.run(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A model serving staging and prod since 2026, then a backdated retrain dated 2025 on
    other data: its decisions are the ones under test."""
    root = tmp_path_factory.mktemp("decisions")
    h = Home(root)
    files = write_csvs(root)
    h.json("init", "proj", "--from", str(files["batch_a"]), "--label", "status", "--id",
           "customer_id", "--family", FAMILY)  # fmt: skip
    at = "2025-01-10T00:00:00Z"
    ho = h.json("ingest", str(files["holdout"]), "--family", FAMILY, "--at", at)["dataset_id"]
    a = h.json("ingest", str(files["batch_a"]), "--family", FAMILY, "--at", at)["dataset_id"]
    b = h.json("ingest", str(files["batch_b"]), "--family", FAMILY, "--at", at)["dataset_id"]
    first = h.json("retrain", "--family", FAMILY, "--eval-dataset", ho, "--at", NOW_TIME)
    assert [d["decision"] for d in first["decisions"]] == ["ModelPromoted"] * 2, first
    late = h.json(
        "retrain", "--family", FAMILY, "--eval-dataset", ho, "--dataset", b, "--at", BACKDATED
    )
    assert late["model_id"] != first["model_id"], "two retrains on different data"
    return {"h": h, "first": first["model_id"], "late": late, "datasets": (ho, a, b)}


def test_a_backdated_gate_reads_the_incumbent_serving_at_its_own_time(
    home: dict[str, Any],
) -> None:
    h, late = home["h"], home["late"]
    # nothing served prod at 2025-01-31: the audit says so, and the gate must agree
    then = h.json("audit", "serving", "--env", "prod", "--at", "2025-01-30T23:00:00Z")
    assert then["serving"] is None
    decisions = {d["env"]: d for d in late["decisions"]}
    assert set(decisions) == {"staging", "prod"}, late
    prod = h.json("audit", "why-promoted", late["model_id"], "--env", "prod")["promotion"]
    assert prod["at"].startswith("2025-01-31")
    assert prod.get("incumbent_model_id") is None, prod  # not the model serving from 2026
    assert "no model was serving prod at 2025-01-31T00:00:00Z" in prod["reason"], prod
    assert home["first"][:12] not in prod["reason"]
    # today the first model still serves prod: the backdated decision did not replace it
    now = h.json("audit", "serving", "--env", "prod")
    assert now["serving"]["model_id"] == home["first"]


def test_a_gate_today_names_the_incumbent_and_when_it_was_serving(home: dict[str, Any]) -> None:
    h, late = home["h"], home["late"]
    r = h.run("promote", "evaluate", late["model_id"][:12], "--env", "prod", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert f"incumbent {home['first'][:12]} (serving prod at 20" in doc["reason"], doc
    decided = h.json("audit", "history", "--limit", "100")["decisions"]
    last = [d for d in decided if d["trigger"] == "evaluate"][-1]
    assert last["incumbent_model_id"] == home["first"], last


def test_why_promoted_answers_for_every_environment_or_the_one_asked(
    home: dict[str, Any],
) -> None:
    h, first = home["h"], home["first"]
    every = h.json("audit", "why-promoted", first)
    assert [e["env"] for e in every["environments"]] == ["staging", "prod"]
    assert [e["promotion"]["env"] for e in every["environments"]] == ["staging", "prod"]
    only = h.json("audit", "why-promoted", first, "--env", "prod")
    assert only["env"] == "prod" and only["promotion"]["env"] == "prod"
    assert only == every["environments"][1]
    assert only["rejections"] == [] and only["reviews"] == []
    text = h.run("audit", "why-promoted", first)
    assert text.returncode == 0, text.stderr
    words = " ".join(text.stdout.split())  # as printed, whatever the terminal's width
    assert f"== staging == {first} promoted to staging" in words
    assert f"== prod == {first} promoted to prod" in words
    # the Python client and the HTTP API give the same documents
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.client import Client
    from keel.settings import Settings
    from keel_services.audit.http import create_app

    settings = Settings(
        home=Path(h.env["KEEL_HOME"]),
        bus="",
        views="",
        project=Path(h.env["KEEL_PROJECT"]),
        keys_dir=Path(h.env["KEEL_KEYS_DIR"]),
    )
    with Client(settings) as k:
        assert k.why_promoted(first).model_dump(mode="json", exclude_unset=True) == every
        assert k.why_promoted(first, "prod").model_dump(mode="json", exclude_unset=True) == only
    with bootstrap(settings) as rt, TestClient(create_app(rt)) as api:
        for path, expected in (("", every), ("?env=prod", only)):
            r = api.get(f"/v1/models/{first[:12]}/why-promoted{path}")
            assert r.status_code == 200, r.text
            body = r.json()
            body.pop("freshness")
            assert body == expected


def test_every_why_promoted_option_says_what_it_does() -> None:
    import typer.main

    from keel_services.entrypoints.cli.audit_cmd import app

    group = typer.main.get_command(app)
    command = group.commands["why-promoted"]  # type: ignore[attr-defined]
    options = [p for p in command.params if p.param_type_name == "option"]
    assert {"--env", "--over", "--as-of", "--json"} <= {o.opts[0] for o in options}
    assert all(o.help for o in options), [o.opts for o in options if not o.help]


def test_deploy_records_the_reason_and_warns_about_an_unknown_actor(
    home: dict[str, Any],
) -> None:
    h, late = home["h"], home["late"]
    env = {k: v for k, v in h.env.items() if k not in ("USER", "LOGNAME")}
    reason = "ticket 881: the smaller batch is the cleaner one"
    r = h.run(
        "deploy", late["model_id"][:12], "--env", "staging", "--reason", reason, "--json", env=env
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["deployed"], r.stdout
    warnings = [line for line in r.stderr.splitlines() if "actor" in line]
    assert len(warnings) == 1 and "KEEL_ACTOR" in warnings[0] and "KEEL_IDENTITY" in warnings[0]
    deps = h.json("deployments", "list", "--env", "staging", "--limit", "1")["deployments"]
    assert deps[0]["model_id"] == late["model_id"] and deps[0]["reason"] == reason, deps[0]
    assert deps[0]["actor"] == "unknown"
    # named, nothing to warn about
    quiet = h.run("audit", "serving", "--env", "staging")
    assert quiet.returncode == 0 and "actor" not in quiet.stderr
