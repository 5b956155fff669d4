"""Skew that does not cry wolf: each feature is compared by the test that fits its kind (one-hot
flags and counts by their value frequencies, continuous features by quantile bins and KS), and a
window too small to judge says so. Training side: keel.features.table_stats of a synthetic
subscription table's features; serving side: keel.skew.Window over rows sent to the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keel.features import FeatureTable, table_stats
from keel.skew import MIN_VALUES, Window, compare

pytestmark = pytest.mark.unit
PLANS = ("basic", "pro", "enterprise")
PSI, PVALUE = 0.2, 0.001  # the project defaults ([families.F.skew])


def subscriptions(
    n: int, seed: int, enterprise: float = 0.2, seats_p: float = 0.3, spend_shift: float = 0.0
) -> list[dict[str, float]]:
    """What a scaffolded transform hands the model for a subscription table: the plan one-hot,
    a count of seats (0-7), a spend in currency units and a usage ratio."""
    rng = np.random.default_rng(seed)
    plans = rng.choice(PLANS, size=n, p=[0.8 - enterprise, 0.2, enterprise])
    seats = rng.binomial(7, seats_p, size=n)
    spend = rng.lognormal(4.0, 0.5, size=n) * (1 + spend_shift)
    usage = rng.beta(2, 5, size=n)
    return [
        {
            **{f"plan={p}": float(plans[i] == p) for p in PLANS},
            "seats": int(seats[i]),
            "monthly_spend": float(spend[i]),
            "usage_ratio": float(usage[i]),
        }
        for i in range(n)
    ]


def training(rows: list[dict[str, float]]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    columns = list(rows[0])
    table = FeatureTable(
        columns, [[r[c] for c in columns] for r in rows], "churned", [0] * len(rows)
    )
    return table_stats(table, classes=True), {c: [float(r[c]) for r in rows] for c in columns}


def served(rows: list[dict[str, float]]) -> dict[str, Any]:
    w = Window()
    for r in rows:
        w.add(r)
    return w.doc()


TRAIN = subscriptions(3000, seed=1)
STATS, VALUES = training(TRAIN)


def judge(rows: list[dict[str, float]], stats: dict[str, Any] = STATS) -> dict[str, Any]:
    return {d.feature: d for d in compare(stats, VALUES, served(rows), PSI, PVALUE)}


def test_training_stats_record_each_features_kind_and_value_frequencies() -> None:
    f = STATS["features"]
    assert f["plan=enterprise"]["kind"] == "binary"
    assert set(f["plan=enterprise"]["values"]) == {"0", "1"}
    assert f["seats"]["kind"] == "discrete" and set(f["seats"]["values"]) <= set("01234567")
    assert f["monthly_spend"]["kind"] == "continuous" and "values" not in f["monthly_spend"]


@pytest.mark.parametrize(
    "rows",
    [TRAIN[:400], TRAIN[1000:1100], subscriptions(400, seed=2), subscriptions(200, seed=3)],
    ids=["replayed-400", "replayed-100", "fresh-400", "fresh-200"],
)
def test_training_like_traffic_raises_no_drift_for_any_kind_of_feature(
    rows: list[dict[str, float]],
) -> None:
    """The report of issue 34: replaying the training month flagged 15 of 16 features (one-hot
    PSI 6-7 over collapsed quantile bins, a count 0-7 at PSI 1.96)."""
    got = judge(rows)
    assert set(got) == set(TRAIN[0])
    assert [d for d in got.values() if d.drifting] == []
    assert all(d.psi < 0.1 and d.note is None for d in got.values()), got
    assert {got["plan=pro"].test, got["seats"].test, got["usage_ratio"].test} == {
        "chi-square",
        "ks",
    }


@pytest.mark.parametrize(
    ("shift", "feature"),
    [
        ({"enterprise": 0.45}, "plan=enterprise"),  # a one-hot flag: 20 % -> 45 %
        ({"seats_p": 0.5}, "seats"),  # a count: mean 2.1 -> 3.5 seats
        ({"spend_shift": 0.6}, "monthly_spend"),  # continuous: spend in another currency
    ],
)
def test_a_real_shift_in_each_kind_is_caught(shift: dict[str, float], feature: str) -> None:
    got = judge(subscriptions(300, seed=4, **shift))
    assert got[feature].drifting, got[feature]
    assert got[feature].pvalue < PVALUE
    assert not got["usage_ratio"].drifting  # untouched features stay calm


def test_a_count_value_never_seen_in_training_is_caught() -> None:
    rows = subscriptions(300, seed=5)
    for r in rows[:40]:
        r["seats"] = 12
    assert judge(rows)["seats"].drifting


def test_a_window_too_small_is_reported_as_such_not_as_drift() -> None:
    got = judge(subscriptions(12, seed=6, enterprise=0.7, spend_shift=2.0))
    assert not any(d.drifting for d in got.values())
    assert {d.note for d in got.values()} == {f"too few requests to judge: 12 of {MIN_VALUES}"}


def old_document(stats: dict[str, Any]) -> dict[str, Any]:
    """Stats as written before kinds and value frequencies were recorded."""
    return {
        **stats,
        "features": {
            k: {f: v for f, v in c.items() if f not in ("kind", "values")}
            for k, c in stats["features"].items()
        },
    }


def test_old_stats_documents_fall_back_to_the_training_values() -> None:
    old = old_document(STATS)
    calm = judge(TRAIN[:400], old)
    assert not any(d.drifting for d in calm.values())
    assert calm["seats"].kind == "discrete" and calm["plan=basic"].kind == "binary"
    assert judge(subscriptions(300, seed=4, enterprise=0.45), old)["plan=enterprise"].drifting


def test_served_values_past_the_distinct_limit_stop_being_counted() -> None:
    w = Window()
    for i in range(100):
        w.add({"flag": float(i % 2), "id_like": float(i)})
    doc = w.doc()["features"]
    assert doc["flag"]["values"] == {"0": 50, "1": 50} and "values" not in doc["id_like"]
