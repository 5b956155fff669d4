"""Keel inside pipelines it does not run: the step API, the command wrapper and a Dagster job
record the same facts as a keel.toml pipeline, so the audit answers work the same way; reruns
skip work by ID; a failing step leaves its failure recorded and no orphan artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import keel_services
from examples.own_pipeline import train_steps as steps
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir, write_csv

pytestmark = [pytest.mark.e2e]
KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "breast_cancer"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A demo project with a held-out set and three monthly batches ingested."""
    home, project = prepare_workdir(tmp_path / "wd")
    env = {
        "KEEL_HOME": str(home),
        "KEEL_PROJECT": str(project),
        "KEEL_KEYS_DIR": str(project.with_name("keys")),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    holdout, batches = monthly_batches()
    with keel_services.Client() as c:
        ho = c.ingest(write_csv(tmp_path / "h.csv", holdout), FAMILY, "2025-01-01").dataset_id
        ds = [
            c.ingest(write_csv(tmp_path / f"m{i}.csv", batches[i]), FAMILY, f"2025-0{i + 1}-05")
            for i in range(3)
        ]
    return {**env, "holdout": ho, "datasets": ",".join(d.dataset_id for d in ds)}


def events(c: Any) -> list[Any]:
    from keel.events import decode_event

    return [decode_event(c.rt.codec, r.value) for r in c.rt.log.read()]


def count(c: Any, event_type: str) -> int:
    return sum(type(e).__name__ == event_type for e in events(c))


def test_the_step_api_is_audited_like_a_keel_toml_pipeline(project: dict[str, str]) -> None:
    datasets = project["datasets"].split(",")
    with keel_services.Client() as c:
        pipeline = c.retrain(FAMILY, project["holdout"], datasets, "2025-03-25")
        fs = steps.features_step(c, datasets)
        eval_fs = steps.features_step(c, [project["holdout"]])
        model = steps.train_step(c, fs, C=0.5)
        report = steps.evaluate_step(c, model, eval_fs)
        decided = c.history(FAMILY)
        lineage = {n.id for n in c.lineage(report)}
        diff = c.diff(pipeline.model_id or "", model)
        why = c.why_promoted(model, "staging")
    # the gate read the step's evaluation like the pipeline's: a decision for each model
    assert {d.model_id for d in decided} >= {pipeline.model_id, model}
    assert {model, eval_fs, fs, *datasets, project["holdout"]} <= lineage
    # the diff sees the same training data on both sides, and different code
    data = diff.model_dump()["datasets"]
    assert data["only_a"] == data["only_b"] == [] and data["shared"] == len(datasets)
    assert not diff.model_dump()["code_version"]["same"]
    assert why.promotion.model_id == model


def test_a_step_model_is_deployed_and_served(project: dict[str, str]) -> None:
    from fastapi.testclient import TestClient

    from keel.project import load_project
    from keel_services.serve.app import Server, create_app

    datasets = project["datasets"].split(",")
    with keel_services.Client() as c:
        fs = steps.features_step(c, datasets)
        model = steps.train_step(c, fs)
        steps.evaluate_step(c, model, steps.features_step(c, [project["holdout"]]))
        deployed = c.serving(FAMILY, "staging", datetime.now(UTC))  # the gate passed it
        assert deployed.serving and deployed.serving.model_id == model
        server = Server(c.rt, load_project(Path(project["KEEL_PROJECT"])), FAMILY, "staging")
        row = dict(monthly_batches()[0][0])
        row.pop("record_id"), row.pop("malignant")
        r = TestClient(create_app(server)).post(f"/v1/models/{FAMILY}/predict", json=row)
    assert r.status_code == 200, r.text
    assert r.json()["model_id"] == model and 0 <= r.json()["probability"] <= 1


def test_a_rerun_skips_work_and_a_failure_stores_nothing(project: dict[str, str]) -> None:
    datasets = project["datasets"].split(",")
    with keel_services.Client() as c:
        fs = steps.features_step(c, datasets)
        before = (count(c, "ArtifactRecorded"), count(c, "FeaturesBuilt"))
        assert steps.features_step(c, datasets) == fs  # same inputs, code, params: skipped
        assert (count(c, "ArtifactRecorded"), count(c, "FeaturesBuilt")) == before
        recorded = count(c, "ArtifactRecorded")

        def broken(table: Any) -> Any:
            raise ValueError("the data has no rows for month 13")

        with (
            pytest.raises(ValueError, match="month 13"),
            keel_services.step(
                "train", family=FAMILY, inputs=[fs], code=broken, outputs=["model"], client=c
            ) as s,
        ):
            s.output(b"half a model", kind="model")
            broken(None)
        failed = [e for e in events(c) if type(e).__name__ == "TrainingFailed"]
        assert failed and failed[-1].stage == "train" and "month 13" in failed[-1].reason
        assert count(c, "ArtifactRecorded") == recorded  # nothing half-stored
        assert not c.rt.artifacts.exists(s.ids["model"])


def test_the_command_wrapper_records_any_program(project: dict[str, str], tmp_path: Path) -> None:
    datasets = project["datasets"].split(",")
    with keel_services.Client() as c:
        fs = steps.features_step(c, datasets)
        eval_fs = steps.features_step(c, [project["holdout"]])
    script = tmp_path / "train.py"
    script.write_text(
        "import json, os, pickle, sys\n"
        "from examples.own_pipeline.train_steps import fit\n"
        "table = json.loads(open(os.environ['KEEL_INPUT_0']).read())\n"
        "model = fit(table, float(sys.argv[1]))\n"
        "pickle.dump(model, open('model.pkl', 'wb'))\n"
    )
    env = {**project, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("holdout"), env.pop("datasets")
    import os

    run_env = {**os.environ, **env}

    def wrap(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, "step", "run", *args], capture_output=True, text=True, env=run_env, cwd=cwd
        )

    cmd = ["train", "--family", FAMILY, "--input", fs, "--param", "C=1.0",
           "--output", "model.pkl:model", "--code", str(script), "--json", "--",
           sys.executable, str(script), "1.0"]  # fmt: skip
    first = wrap(*cmd)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert not doc["skipped"] and doc["outputs"]["model"]
    again = wrap(*cmd)
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"]
    model = doc["outputs"]["model"]
    # an evaluation by another program: it writes only the metrics; the gate reads them
    (tmp_path / "eval.py").write_text(
        "import json, os, pickle\n"
        "from examples.own_pipeline.train_steps import score\n"
        "model = pickle.load(open(os.environ['KEEL_INPUT_0'], 'rb'))\n"
        "table = json.loads(open(os.environ['KEEL_INPUT_1']).read())\n"
        "json.dump({'metrics': score(model, table)}, open('report.json', 'w'))\n"
    )
    evaluated = wrap("evaluate", "--family", FAMILY, "--input", model, "--input", eval_fs,
                     "--output", "report.json:eval_report", "--code", str(tmp_path / "eval.py"),
                     "--json", "--", sys.executable, str(tmp_path / "eval.py"))  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    with keel_services.Client() as c:
        trained = c.rt.views.get(f"model:{model}")
        assert trained and trained["feature_set_ids"] == [fs]
        why = c.why_promoted(model, "staging")  # the same questions answer for it
        assert why.promotion.model_id == model and why.promotion.decision == "promoted"
        assert c.serving(FAMILY, "staging", datetime.now(UTC)).serving.model_id == model  # type: ignore[union-attr]
        recorded = count(c, "ArtifactRecorded")
    crash = "import sys; sys.stderr.write('out of memory'); sys.exit(3)"
    bad = wrap("train", "--family", FAMILY, "--input", fs, "--output", "x.pkl:model", "--",
               sys.executable, "-c", crash)  # fmt: skip
    assert bad.returncode != 0 and "exit status 3" in bad.stderr
    with keel_services.Client() as c:
        failed = [e for e in events(c) if type(e).__name__ == "TrainingFailed"][-1]
        assert "exit status 3" in failed.reason and "out of memory" in failed.reason
        assert count(c, "ArtifactRecorded") == recorded


def test_a_dagster_job_records_keel_steps(project: dict[str, str]) -> None:
    import dagster as dg  # a dev dependency: `make install` installs it

    from examples.own_pipeline.dagster_assets import ASSETS, KeelResource

    resource = KeelResource(
        training_datasets=project["datasets"].split(","), holdout_dataset=project["holdout"]
    )
    result = dg.materialize(ASSETS, resources={"keel_run": resource})
    assert result.success
    model = result.output_for_node("model")
    with keel_services.Client() as c:
        assert c.rt.views.get(f"model:{model}")
        decisions = [d for d in c.history(FAMILY) if d.model_id == model]
        assert decisions, "the gate did not read the Dagster job's evaluation"
