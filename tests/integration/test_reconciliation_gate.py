"""An incompatible contract change stops the pipeline, with the reason in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel_services.entrypoints.cli.main import app
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir, write_csv

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_a_narrowed_inference_type_stops_training_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, project = prepare_workdir(tmp_path / "wd")
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.setenv("KEEL_PROJECT", str(project))
    monkeypatch.setenv("KEEL_KEYS_DIR", str(project.with_name("keys")))
    holdout, batches = monthly_batches()

    def ingest(name: str, rows: list[dict[str, object]]) -> str:
        r = runner.invoke(
            app,
            [
                "ingest",
                str(write_csv(tmp_path / name, rows)),
                "--family",
                "breast_cancer",
                "--json",
            ],
        )
        assert r.exit_code == 0, r.output
        return str(json.JSONDecoder().raw_decode(r.stdout)[0]["dataset_id"])

    ho, ds = ingest("h.csv", holdout), ingest("m.csv", batches[0] + batches[1])
    ok = runner.invoke(app, ["schemas", "reconcile", "--family", "breast_cancer", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["compatible"]

    inference = project.parent / "contracts" / "breast_cancer" / "inference.avsc"
    schema = json.loads(inference.read_text())
    next(f for f in schema["fields"] if f["name"] == "mean_radius")["type"] = "string"
    inference.write_text(json.dumps(schema))

    bad = runner.invoke(app, ["schemas", "reconcile", "--family", "breast_cancer", "--json"])
    assert bad.exit_code == 1
    (problem,) = json.loads(bad.stdout)["problems"]
    assert (problem["field"], problem["rule"]) == ("mean_radius", "type")
    retrain = runner.invoke(
        app, ["retrain", "--family", "breast_cancer", "--eval-dataset", ho, "--dataset", ds]
    )
    assert retrain.exit_code == 2
    assert (
        "contracts diverge, nothing was trained" in retrain.output
        and "mean_radius" in retrain.output
    )
    tail = runner.invoke(app, ["audit", "tail", "--topic", "training", "--json"])
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    kinds = [e["envelope"]["event_type"] for e in events]
    assert kinds.count("SchemaReconciliationFailed") == 2 and "ModelTrained" not in kinds
    failed = [e for e in events if e["envelope"]["event_type"] == "SchemaReconciliationFailed"][-1]
    assert failed["stage"] == "train" and failed["problems"][0]["field"] == "mean_radius"


def test_diverging_contracts_block_deploys_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner.invoke(app, ["demo", "--json", "--workdir", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    demo = json.loads(r.stdout)
    monkeypatch.setenv("KEEL_HOME", demo["home"])
    monkeypatch.setenv("KEEL_PROJECT", demo["project"])
    monkeypatch.setenv("KEEL_KEYS_DIR", demo["keys_dir"])
    training = tmp_path / "d" / "contracts" / "breast_cancer" / "training.avsc"
    schema = json.loads(training.read_text())
    schema["keel.labels"] = []  # the label is no longer declared
    training.write_text(json.dumps(schema))
    out = runner.invoke(app, ["deploy", "rollback", "--family", "breast_cancer", "--env", "prod"])
    assert out.exit_code == 2 and "nothing was deployed" in out.output
    tail = runner.invoke(app, ["audit", "tail", "--topic", "training", "--json", "--last", "1"])
    last = json.loads(tail.stdout)
    assert (
        last["envelope"]["event_type"] == "SchemaReconciliationFailed" and last["stage"] == "deploy"
    )
