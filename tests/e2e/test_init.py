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
