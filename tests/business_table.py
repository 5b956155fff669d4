"""A synthetic business table of the kind a newcomer brings: a string label with three classes,
categorical and numeric columns (numbers with 4-12% empty cells), a customer ID, an event date
and a 40-value text column. The label follows the features, so a default model learns it."""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

FEATURES = ["region", "plan", "tenure_months", "monthly_spend", "support_calls", "discount"]
LABEL = "segment"
CITIES = [f"city_{i:02d}" for i in range(40)]


def business_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    rows = []
    for _ in range(n):
        plan = rnd.choice(["basic", "plus", "pro"])
        spend = rnd.uniform(5, 60) + {"basic": 0, "plus": 40, "pro": 80}[plan]
        calls = rnd.randint(0, 9)
        segment = "churn_risk" if calls >= 7 else ("premium" if spend > 90 else "steady")
        row = {
            "customer_id": f"C{rnd.randint(1000, 1000 + n // 2)}",  # customers come back
            "event_date": str(date(2025, 1, 1) + timedelta(days=rnd.randint(0, 364))),
            "region": rnd.choice(["north", "south", "east", "west"]),
            "plan": plan,
            "city": rnd.choice(CITIES),
            "tenure_months": str(rnd.randint(1, 120)),
            "monthly_spend": f"{spend:.2f}",
            "support_calls": str(calls),
            "discount": f"{rnd.random() / 4:.3f}",
            LABEL: segment,
        }
        # empty cells: 4-12% of each numeric column
        for col, rate in (("tenure_months", 0.05), ("monthly_spend", 0.08), ("discount", 0.11)):
            if rnd.random() < rate:
                row[col] = ""
        rows.append(row)
    return rows


def write_business_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter=delimiter)
        w.writeheader()
        w.writerows(rows)
    return path
