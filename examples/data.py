"""Write the example families' data from the datasets scikit-learn ships: a held-out
evaluation file and two training batches per family, as CSV.

    python examples/data.py wine OUTDIR      # holdout.csv, batch-1.csv, batch-2.csv
    python examples/data.py diabetes OUTDIR
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

CULTIVARS = ["barolo", "grignolino", "barbera"]


def records(family: str) -> tuple[list[str], list[dict[str, Any]]]:
    from sklearn.datasets import load_diabetes, load_wine

    data = load_wine() if family == "wine" else load_diabetes()
    names = [re.sub(r"\W+", "_", n.strip()).lower().strip("_") for n in data.feature_names]
    label = "cultivar" if family == "wine" else "progression"
    rows = []
    for i, (x, y) in enumerate(zip(data.data, data.target, strict=True)):
        value: Any = CULTIVARS[int(y)] if family == "wine" else float(y)
        measured = dict(zip(names, map(float, x), strict=True))
        rows.append({"record_id": f"{family}-{i:04d}", **measured, label: value})
    return ["record_id", *names, label], rows


def split(family: str) -> dict[str, list[dict[str, Any]]]:
    """Deterministic: a stratified (wine) or plain quarter held out, the rest in two batches."""
    from sklearn.model_selection import train_test_split

    _, rows = records(family)
    strat = [r["cultivar"] for r in rows] if family == "wine" else None
    train, holdout = train_test_split(rows, test_size=0.25, random_state=0, stratify=strat)
    half = len(train) // 2
    return {"holdout": holdout, "batch-1": train[:half], "batch-2": train[half:]}


def write(family: str, out: Path) -> dict[str, Path]:
    cols, _ = records(family)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in split(family).items():
        path = out / f"{name}.csv"
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            w.writerows(rows)
        paths[name] = path
    return paths


if __name__ == "__main__":
    for p in write(sys.argv[1], Path(sys.argv[2])).values():
        print(p)
