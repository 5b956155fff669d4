"""Training-side computations, pure: evaluation metrics and the calibration table."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score


def metrics(y_true: np.ndarray, p_positive: np.ndarray, wanted: list[str]) -> dict[str, float]:
    compute = {
        "roc_auc": lambda: roc_auc_score(y_true, p_positive),
        "accuracy": lambda: accuracy_score(y_true, p_positive >= 0.5),
        "log_loss": lambda: log_loss(y_true, p_positive, labels=[0, 1]),
        "brier": lambda: brier_score_loss(y_true, p_positive),
    }
    # Rounded so that reports and gate margins read cleanly; 6 digits is far below eval noise.
    return {m: round(float(compute[m]()), 6) for m in wanted}


def calibration_table(
    y_true: np.ndarray, p_positive: np.ndarray, bins: int = 10
) -> list[dict[str, Any]]:
    """Per probability bin: how many, mean predicted, observed positive rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p_positive, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        table.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "count": n,
                "mean_predicted": round(float(p_positive[mask].mean()), 6) if n else None,
                "observed_rate": round(float(y_true[mask].mean()), 6) if n else None,
            }
        )
    return table
