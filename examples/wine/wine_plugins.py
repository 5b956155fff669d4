"""The wine family's user code: features as they come, a scaled logistic regression."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def features(record: dict[str, Any]) -> dict[str, float]:
    # Keel hands over exactly the inference contract's fields: no label, no record_id.
    return {k: float(v) for k, v in record.items()}


def train(X: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Pipeline:
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"])),
    )
    return model.fit(X, y)
