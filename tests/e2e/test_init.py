"""From a CSV to a governed pipeline with no hand edits: `keel init` + `keel ingest` +
`keel retrain` reach a deployed model for scikit-learn's breast-cancer, wine and diabetes data;
the inferred contracts reconcile and quarantine records that break them."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def write_csvs(name: str, root: Path) -> tuple[str, Path, Path]:
    """(label, holdout.csv, train.csv) from a dataset scikit-learn ships."""
    from sklearn import datasets

    loader, label, mapper = {
        "cancer": (datasets.load_breast_cancer, "malignant", lambda y: 1 - int(y)),
        "wine": (
            datasets.load_wine,
            "cultivar",
            lambda y: ["barolo", "grignolino", "barbera"][int(y)],
        ),
        "diabetes": (datasets.load_diabetes, "progression", float),
    }[name]
    data = loader()
    cols = [re.sub(r"\W+", "_", n.strip()).lower().strip("_") for n in data.feature_names]
    rows = [
        [f"{name}-{i}", *x, mapper(y)]
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True))
    ]
    random.Random(0).shuffle(rows)
    paths = []
    for part, chunk in (("holdout", rows[: len(rows) // 4]), ("train", rows[len(rows) // 4 :])):
        path = root / f"{name}-{part}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", *cols, label])
            w.writerows(chunk)
        paths.append(path)
    return label, paths[0], paths[1]


@pytest.mark.parametrize(
    ("name", "task"), [("cancer", "binary"), ("wine", "multiclass"), ("diabetes", "regression")]
)
def test_init_ingest_retrain_reaches_a_deployment(name: str, task: str, tmp_path: Path) -> None:
    label, holdout, train = write_csvs(name, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path / "home"),
        KEEL_PROJECT=str(tmp_path / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(tmp_path / "keys"),
    )

    def keel(*args: str) -> Any:
        r = subprocess.run(
            [KEEL, *args, "--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    made = keel(
        "init", "proj", "--from", str(train), "--label", label, "--id", "id", "--family", name
    )
    assert made["task"] == task and made["keys_created"]
    again = subprocess.run(
        [KEEL, "init", "proj", "--from", str(train), "--label", label],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert again.returncode == 2 and "--force" in again.stderr  # never overwrites silently
    assert keel("schemas", "reconcile", "--family", name)["compatible"]
    ho = keel("ingest", str(holdout), "--family", name)["dataset_id"]
    keel("ingest", str(train), "--family", name)
    out = keel("retrain", "--family", name, "--eval-dataset", ho)
    assert [d["decision"] for d in out["decisions"]] == ["ModelPromoted", "ModelPromoted"], out
    assert keel("audit", "serving", "--env", "prod")["serving"]["model_id"] == out["model_id"]
    assert keel("audit", "verify")["ok"]

    # the inferred contract is a real boundary: a record that breaks it is quarantined
    with open(train) as f:
        reader = csv.DictReader(f)
        good = next(reader)
    bad = dict(good, id="bad-1", **{label: "not-a-class" if task != "regression" else "abc"})
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="") as f:
        w = csv.DictWriter(f, list(good))
        w.writeheader()
        w.writerows([good, bad])
    res = keel("ingest", str(broken), "--family", name)
    assert (res["accepted"], res["quarantined"]) == (1, 1)


def test_unreadable_or_unsuitable_samples_are_refused_with_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_KEYS_DIR"] = str(tmp_path / "keys")
    binary = tmp_path / "junk.csv"
    binary.write_bytes(b"\x00\xff\xfe\x89PNG binary")
    one_class = tmp_path / "one.csv"
    one_class.write_text("f,y\n1,a\n2,a\n")
    for args, says in (
        (["--from", str(tmp_path / "missing.csv"), "--label", "y"], "not a readable file"),
        (["--from", str(binary), "--label", "y"], "unreadable"),
        (["--from", str(one_class), "--label", "nope"], "label column 'nope' is not in the data"),
        (["--from", str(one_class), "--label", "y"], "1 class(es)"),
    ):
        r = subprocess.run(
            [KEEL, "init", str(tmp_path / "p"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert r.returncode == 2 and says in r.stderr and "hint" in r.stderr, r.stderr
    assert not (tmp_path / "p").exists()  # nothing written on a refusal


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path / "home"),
        KEEL_PROJECT=str(tmp_path / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(tmp_path / "keys"),
    )
    return env


def _keel(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_a_business_table_serves_with_only_its_features(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 34: with no --id, customer_id and event_date were required features and every
    caller got 422 for them; the 40-value text column was required but unused. Now init
    proposes them as metadata, and a caller sending only the features gets a prediction."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.project import load_project
    from keel.settings import Settings
    from keel_services.serve.app import Server, create_app
    from tests.business_table import FEATURES, LABEL, business_rows, write_business_csv

    rows = business_rows(600, seed=3)
    train = write_business_csv(tmp_path / "shop-train.csv", rows[150:], ";")
    holdout = write_business_csv(tmp_path / "shop-holdout.csv", rows[:150], ";")
    env = _env(tmp_path)
    made = _keel(env, tmp_path, "init", "proj", "--from", str(train), "--label", LABEL)
    assert made.returncode == 0, made.stderr
    out = " ".join(made.stdout.split())
    assert "delimited by semicolon" in out
    assert f"features (6): {', '.join(FEATURES)}" in out
    for col, role in (("customer_id", "id"), ("event_date", "time"), ("city", "unused")):
        assert f"{col} ({role}):" in out
    assert "--feature NAME" in out

    def keel(*args: str) -> Any:
        r = _keel(env, tmp_path, *args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert keel("schemas", "reconcile", "--family", "shop_train")["compatible"]
    ho = keel("ingest", str(holdout), "--family", "shop_train")["dataset_id"]
    keel("ingest", str(train), "--family", "shop_train")
    done = keel("retrain", "--family", "shop_train", "--eval-dataset", ho)
    assert done["decisions"][-1]["decision"] == "ModelPromoted", done

    monkeypatch.setenv("KEEL_KEYS_DIR", env["KEEL_KEYS_DIR"])
    project = tmp_path / "proj" / "keel.toml"
    settings = Settings(home=tmp_path / "home", project=project, bus="", views="")
    with bootstrap(settings, create=False) as rt:
        server = Server(rt, load_project(tmp_path / "proj" / "keel.toml"), "shop_train", "prod")
        client = TestClient(create_app(server))
        payload = {k: v for k, v in rows[0].items() if k in FEATURES}
        payload.update(tenure_months=None, support_calls=int(payload["support_calls"]))
        payload["monthly_spend"] = float(payload["monthly_spend"] or 50.0)
        payload["discount"] = float(payload["discount"] or 0.1)
        r = client.post("/v1/models/shop_train/predict", json=payload)
        assert r.status_code == 200, r.text
        assert r.json()["model_id"] == done["model_id"]


def test_init_lists_the_private_keys_it_wrote(tmp_path: Path) -> None:
    """Issue 34: the private keys went to the keys directory without a word."""
    from tests.business_table import LABEL, business_rows, write_business_csv

    data = write_business_csv(tmp_path / "shop.csv", business_rows(60))
    env = _env(tmp_path)
    r = _keel(env, tmp_path, "init", "proj", "--from", str(data), "--label", LABEL)
    assert r.returncode == 0, r.stderr
    keys = sorted((tmp_path / "keys").glob("*.key"))
    assert keys
    out = " ".join(r.stdout.split())
    for key in keys:
        assert f"wrote {key}: the private signing key of" in out
    assert "outside the project" in out and "keep them secret" in out
    assert "wrote proj/keys.toml" in out
    again = _keel(env, tmp_path, "init", "proj2", "--from", str(data), "--label", LABEL, "--json")
    doc = json.loads(again.stdout)
    assert [Path(k["path"]).exists() for k in doc["private_keys"]] == [True] * len(
        doc["keys_created"]
    )


def test_contracts_infer_takes_several_ids_and_a_forced_feature(tmp_path: Path) -> None:
    from tests.business_table import LABEL, business_rows, write_business_csv

    data = write_business_csv(tmp_path / "shop.csv", business_rows(60), "\t")
    r = _keel(
        _env(tmp_path), tmp_path, "contracts", "infer", str(data), "--label", LABEL,
        "--id", "customer_id", "--id", "region", "--feature", "city", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["delimiter"] == "tab"
    assert [m["column"] for m in doc["metadata"]] == ["customer_id", "event_date", "region"]
    assert "city" in doc["features"]
    inference = json.loads((tmp_path / "inference.avsc").read_text())
    assert "region" not in [f["name"] for f in inference["fields"]]
