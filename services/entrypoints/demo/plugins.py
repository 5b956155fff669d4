"""The demo's user code, plugged in through keel.toml like anyone's would be."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

SKIP = {"record_id", "malignant"}


def features(record: dict[str, Any]) -> dict[str, float]:
    """Every measured feature as is, plus two ratios clinicians look at."""
    out = {k: float(v) for k, v in record.items() if k not in SKIP}
    out["worst_to_mean_area"] = out["worst_area"] / out["mean_area"] if out["mean_area"] else 0.0
    out["worst_to_mean_concavity"] = (
        out["worst_concavity"] / out["mean_concavity"] if out["mean_concavity"] else 0.0
    )
    return out


def train(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Pipeline:
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 2000))
        ),
    )
    model.fit(X, y)
    return model
