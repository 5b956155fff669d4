"""A newcomer's family for end-to-end tests: a synthetic subscription table (string label,
an ID, a date, a categorical plan, a count of seats, a spend with empty cells), taken from
CSV to a model serving in prod by `keel init`, `keel ingest` and `keel retrain`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "subscriptions"
PLANS = ("basic", "pro", "enterprise")


def table(
    n: int, seed: int, enterprise: float = 0.2, seats_p: float = 0.3, spend_scale: float = 1.0
) -> list[dict[str, Any]]:
    """Rows as a CSV holds them: churn is likelier with few seats and low usage."""
    rng = np.random.default_rng(seed)
    plans = rng.choice(PLANS, size=n, p=[0.8 - enterprise, 0.2, enterprise])
    seats = rng.binomial(7, seats_p, size=n)
    spend = rng.lognormal(4.0, 0.5, size=n) * spend_scale
    usage = rng.beta(2, 5, size=n)
    churn = rng.random(n) < 1 / (1 + np.exp(-(4.0 - 1.5 * seats - 8 * usage)))
    return [
        {
            "account_id": f"acct-{seed}-{i}",
            "signed_up": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
            "plan": str(plans[i]),
            "seats": int(seats[i]),
            "monthly_spend": "" if i % 17 == 0 else round(float(spend[i]), 2),
            "usage_ratio": round(float(usage[i]), 4),
            "churned": "yes" if churn[i] else "no",
        }
        for i in range(n)
    ]


def write(rows: list[dict[str, Any]], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def payload(row: dict[str, Any]) -> dict[str, Any]:
    """A row as `keel serve` takes it: no label, no ID, no date; an empty cell is null."""
    skip = ("churned", "account_id", "signed_up")
    return {k: (None if v == "" else v) for k, v in row.items() if k not in skip}


def subscription_home(root: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(what was made: project, home, keys_dir, the training rows, model_id), env for `keel`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(root / "home"),
        KEEL_PROJECT=str(root / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(root / "keys"),
    )

    def keel(*args: str) -> Any:
        r = subprocess.run(
            [KEEL, *args, "--json"], capture_output=True, text=True, env=env, cwd=root, timeout=600
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    root.mkdir(parents=True, exist_ok=True)
    train_rows = table(1200, seed=1)
    train = write(train_rows, root / "subscriptions-train.csv")
    holdout = write(table(400, seed=2), root / "subscriptions-holdout.csv")
    keel("init", "proj", "--from", str(train), "--label", "churned", "--id", "account_id",
         "--time", "signed_up", "--family", FAMILY)  # fmt: skip
    ho = keel("ingest", str(holdout), "--family", FAMILY)["dataset_id"]
    keel("ingest", str(train), "--family", FAMILY)
    out = keel("retrain", "--family", FAMILY, "--eval-dataset", ho)
    assert [d["decision"] for d in out["decisions"]] == ["ModelPromoted"] * 2, out
    made = {
        "project": env["KEEL_PROJECT"],
        "home": env["KEEL_HOME"],
        "keys_dir": env["KEEL_KEYS_DIR"],
        "train": train_rows,
        "model_id": out["model_id"],
    }
    return made, env
