"""A project a newcomer makes with `keel init` from scikit-learn's iris data (a family the demo
and the examples do not use): string labels, an ID column, a date column."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "iris"


def iris_csv(path: Path) -> Path:
    from sklearn.datasets import load_iris

    data = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["flower_id", "picked_on", *names, "species"])
        for i, (x, y) in enumerate(zip(data.data, data.target, strict=True)):
            day = f"2025-04-{1 + i % 28:02d}"
            w.writerow([f"f{i:03d}", day, *x, str(data.target_names[y])])
    return path


def init_project(root: Path, **extra: str) -> dict[str, str]:
    """`keel init` in root/proj from an iris sample; the environment that uses it."""
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(root / "home"),
        KEEL_PROJECT=str(root / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(root / "keys"),
        KEEL_PRINCIPAL="operator",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        **extra,
    )
    sample = iris_csv(root / "iris.csv")
    argv = [KEEL, "init", "proj", "--from", str(sample), "--label", "species"]
    made = subprocess.run(
        [*argv, "--id", "flower_id", "--family", FAMILY],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    assert made.returncode == 0, made.stderr
    return env
