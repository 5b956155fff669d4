"""The example families end to end, as a new user runs them: wine (multiclass, string labels)
and diabetes (regression). Keel's numbers equal scikit-learn's on the same rows, the gates read
each metric's direction, serving answers per task, the audit questions answer; and the
parity loophole is closed (a transform that reads a metadata field fails in training, recorded)."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LABEL = {"wine": "cultivar", "diabetes": "progression"}


class Example:
    def __init__(self, family: str, root: Path, backend: dict[str, str] | None = None) -> None:
        self.family, self.root = family, root
        self.dir = root / family
        shutil.copytree(EXAMPLES / family, self.dir)
        spec = importlib.util.spec_from_file_location("keel_examples_data", EXAMPLES / "data.py")
        assert spec is not None and spec.loader is not None
        data = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(data)
        self.files = data.write(family, root / "data")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        self.env.update(
            KEEL_HOME=str(root / "home"),
            KEEL_PROJECT=str(self.dir / "keel.toml"),
            KEEL_KEYS_DIR=str(root / "keys"),
            **(backend or {}),
        )
        assert self.keel("keys", "create").returncode == 0

    def keel(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, *args], capture_output=True, text=True, env=self.env, cwd=self.dir, timeout=600
        )

    def json(self, *args: str) -> Any:
        r = self.keel(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def ingest(self, name: str) -> str:
        return str(
            self.json("ingest", str(self.files[name]), "--family", self.family)["dataset_id"]
        )

    @contextmanager
    def serving(self, env: str = "prod") -> Iterator[Any]:
        """A test client of `keel serve` for this family, on the embedded home."""
        from fastapi.testclient import TestClient

        from keel.bootstrap import bootstrap
        from keel.project import load_project
        from keel.settings import Settings
        from keel_services.serve.app import Server, create_app

        project = self.dir / "keel.toml"
        settings = Settings(
            home=self.root / "home", bus="", views="", project=project, keys_dir=self.root / "keys"
        )
        with bootstrap(settings, create=False) as rt:
            yield TestClient(create_app(Server(rt, load_project(project), self.family, env)))

    def rows(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(self.files[name]) as f:
            rows = list(csv.DictReader(f))
        label = LABEL[self.family]
        cols = [c for c in rows[0] if c not in ("record_id", label)]
        X = np.array([[float(r[c]) for c in sorted(cols)] for r in rows])
        y = np.array([r[label] if self.family == "wine" else float(r[label]) for r in rows])
        return X, y


def outside_keel(ex: Example) -> tuple[Any, np.ndarray, np.ndarray]:
    """The same trainer on the same rows, without Keel: the reference numbers."""
    sys.path.insert(0, str(ex.dir))
    plugins = importlib.import_module(f"{ex.family}_plugins")
    X1, y1 = ex.rows("batch-1")
    X2, y2 = ex.rows("batch-2")
    params = {"wine": {"C": 1.0, "max_iter": 5000}, "diabetes": {"alpha": 0.5}}[ex.family]
    model = plugins.train(np.vstack([X1, X2]), np.concatenate([y1, y2]), params)
    Xh, yh = ex.rows("holdout")
    return model, Xh, yh


@pytest.mark.parametrize("backend", ["embedded", "kafka"])
def test_wine_multiclass_with_string_labels(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    extra = None
    if backend == "kafka":
        from keel.log.kafka import new_prefix

        kafka, redis_url = (
            request.getfixturevalue("kafka_bootstrap"),
            request.getfixturevalue("redis_url"),
        )
        prefix = new_prefix()
        extra = {
            "KEEL_BUS": f"kafka://{kafka}?prefix={prefix}",
            "KEEL_VIEWS": f"{redis_url}?namespace={prefix}",
        }
    ex = Example("wine", tmp_path, extra)
    holdout = ex.ingest("holdout")
    ex.ingest("batch-1")
    ex.ingest("batch-2")
    out = ex.json("retrain", "--family", "wine", "--eval-dataset", holdout)
    model, Xh, yh = outside_keel(ex)
    pred, proba = model.predict(Xh), model.predict_proba(Xh)
    want = {
        "accuracy": skm.accuracy_score(yh, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(yh, pred),
        "f1_macro": skm.f1_score(yh, pred, average="macro"),
        "log_loss": skm.log_loss(yh, proba, labels=list(model.classes_)),
    }
    assert out["metrics"] == pytest.approx(want, abs=2e-6)
    assert out["metrics"]["accuracy"] > 0.95  # not the 0.711 of "P(class 1) >= 0.5"
    assert [d["decision"] for d in out["decisions"]] == ["ModelPromoted", "ModelPromoted"]
    serving = ex.json("audit", "serving", "--env", "prod")
    assert serving["serving"]["model_id"] == out["model_id"]
    why = ex.json("audit", "why-promoted", out["model_id"], "--env", "prod")
    assert why["promotion"]["gates"][0]["metric"] == "accuracy"

    if backend == "embedded":  # serving answers per task, with every class
        with ex.serving() as client:
            with open(ex.files["holdout"]) as f:
                rows = list(csv.DictReader(f))
            for i in (0, 1, 2, 3):
                payload = {
                    k: float(v) for k, v in rows[i].items() if k not in ("record_id", "cultivar")
                }
                r = client.post("/v1/models/wine/predict", json=payload)
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["prediction"] == pred[i]
                assert set(body["probabilities"]) == {"barbera", "barolo", "grignolino"}
                assert sum(body["probabilities"].values()) == pytest.approx(1.0)


def test_diabetes_regression_gates_lower_rmse_as_better(tmp_path: Path) -> None:
    ex = Example("diabetes", tmp_path)
    holdout = ex.ingest("holdout")
    ex.ingest("batch-1")
    first = ex.json(
        "retrain",
        "--family",
        "diabetes",
        "--eval-dataset",
        holdout,
        "--dataset",
        ex.ingest("batch-2"),
        "--at",
        "2026-01-01",
    )
    out = ex.json(
        "retrain", "--family", "diabetes", "--eval-dataset", holdout, "--at", "2026-02-01"
    )
    model, Xh, yh = outside_keel(ex)
    pred = model.predict(Xh)
    want = {
        "rmse": float(np.sqrt(skm.mean_squared_error(yh, pred))),
        "mae": skm.mean_absolute_error(yh, pred),
        "r2": skm.r2_score(yh, pred),
    }
    assert out["metrics"] == pytest.approx(want, abs=2e-6)
    (decision,) = out["decisions"]
    # promoted exactly when rmse is at least 0.5 lower than the serving model's (lower = better)
    better = out["metrics"]["rmse"] <= first["metrics"]["rmse"] - 0.5
    assert (decision["decision"] == "ModelPromoted") == better, decision
    assert "rmse" in decision["reason"]
    if better:
        gates = ex.json("audit", "why-promoted", out["model_id"], "--env", "prod")
        gates = gates["promotion"]["gates"]
        assert {g["name"]: g["op"] for g in gates}["rmse_threshold"] == "<="
    serving = ex.json("audit", "serving", "--env", "prod")
    assert serving["serving"]["model_id"] in (first["model_id"], out["model_id"])
    # serving answers the predicted value of the model that serves
    with ex.serving() as client:
        with open(ex.files["holdout"]) as f:
            row = next(csv.DictReader(f))
        body = client.post(
            "/v1/models/diabetes/predict",
            json={k: float(v) for k, v in row.items() if k not in ("record_id", "progression")},
        ).json()
    serving_model = model if serving["serving"]["model_id"] == out["model_id"] else None
    assert isinstance(body["prediction"], float) and "probabilities" not in body
    if serving_model is not None:
        assert body["prediction"] == pytest.approx(float(pred[0]), rel=1e-9)


def test_a_transform_that_reads_metadata_fails_in_training_and_is_recorded(
    tmp_path: Path,
) -> None:
    """The loophole: `proline` marked metadata in the training contract; the transform still
    reads it. It never sees it, so training fails with the entry point named, recorded, and no
    model reaches the registry."""
    ex = Example("wine", tmp_path)
    contract = ex.dir / "contracts" / "training.avsc"
    schema = json.loads(contract.read_text())
    schema["keel.metadata"] = ["record_id", "proline"]
    contract.write_text(json.dumps(schema))
    inference = ex.dir / "contracts" / "inference.avsc"
    inf = json.loads(inference.read_text())
    inf["fields"] = [f for f in inf["fields"] if f["name"] != "proline"]
    inference.write_text(json.dumps(inf))
    (ex.dir / "wine_plugins.py").write_text(
        (ex.dir / "wine_plugins.py")
        .read_text()
        .replace(
            "    return {k: float(v) for k, v in record.items()}",
            '    return {"proline_x": float(record["proline"]), "hue": float(record["hue"])}',
        )
    )
    holdout = ex.ingest("holdout")
    ex.ingest("batch-1")
    r = ex.keel("retrain", "--family", "wine", "--eval-dataset", holdout)
    assert r.returncode == 2
    assert "features: wine_plugins:features raised KeyError" in r.stderr, r.stderr
    tail = [json.loads(x) for x in ex.keel("audit", "tail", "--json").stdout.splitlines()]
    failed = [e for e in tail if e["envelope"]["event_type"] == "TrainingFailed"]
    assert failed and failed[-1]["stage"] == "features"
    assert failed[-1]["entry_point"] == "wine_plugins:features"
    assert not [e for e in tail if e["envelope"]["event_type"] == "ModelTrained"]
    # fixed user code: the rerun goes through, and the model never saw proline
    (ex.dir / "wine_plugins.py").write_text(
        (ex.dir / "wine_plugins.py")
        .read_text()
        .replace(
            '    return {"proline_x": float(record["proline"]), "hue": float(record["hue"])}',
            "    return {k: float(v) for k, v in record.items()}",
        )
    )
    out = ex.json("retrain", "--family", "wine", "--eval-dataset", holdout)
    assert out["metrics"]["accuracy"] > 0.8
    from keel.artifacts.store import LocalArtifactStore

    (fs,) = ex.json("audit", "why", "--env", "staging")["steps"][-1]["feature_sets"]
    store = LocalArtifactStore(tmp_path / "home" / "artifacts")
    columns = json.loads(store.read_bytes(fs["stats_id"]))["features"]
    store.close()
    assert "proline" not in columns and "hue" in columns


def test_serve_refuses_diverging_contracts_and_a_three_class_binary_is_explained(
    tmp_path: Path,
) -> None:
    from keel.bootstrap import bootstrap
    from keel.errors import KeelError
    from keel.project import load_project
    from keel.settings import Settings
    from keel_services.serve.app import Server

    ex = Example("wine", tmp_path)
    # declared binary by mistake (the default task): the evaluation says what to change
    toml = ex.dir / "keel.toml"
    toml.write_text(
        toml.read_text()
        .replace('task = "multiclass"\n', "")
        .replace(
            'metrics = ["accuracy", "balanced_accuracy", "f1_macro", "log_loss"]',
            'metrics = ["accuracy", "log_loss"]',
        )
    )
    holdout = ex.ingest("holdout")
    ex.ingest("batch-1")
    r = ex.keel("retrain", "--family", "wine", "--eval-dataset", holdout)
    assert r.returncode == 2 and 'set task = "multiclass"' in r.stderr, r.stderr
    # an inference contract that asks for a field training never had: serve refuses to start
    inference = ex.dir / "contracts" / "inference.avsc"
    inf = json.loads(inference.read_text())
    inf["fields"].append({"name": "vintage", "type": "int"})
    inference.write_text(json.dumps(inf))
    settings = Settings(
        home=tmp_path / "home", bus="", views="", project=toml, keys_dir=tmp_path / "keys"
    )
    with bootstrap(settings, create=False) as rt, pytest.raises(KeelError, match="diverge"):
        Server(rt, load_project(toml), "wine", "prod")
