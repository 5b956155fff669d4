"""Training-side computations, pure: the calibration table (metrics: keel.metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np


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
