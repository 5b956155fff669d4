"""Training/serving skew, pure: bounded window statistics of served features, and their
comparison with the training statistics of the model that served them.

A window keeps, per feature, a count, nulls, sum, sum of squares, min, max and a reservoir
sample of at most SAMPLE values (Vitter's algorithm R with a seeded generator): memory is
O(features x SAMPLE) whatever the traffic. Its document has the fields of the feature
service's column statistics (keel.features.column_stats) plus the sample.

Comparison per feature: the population stability index over the bins cut at the training
quantiles (p05, p25, p50, p75, p95: expected shares 5/20/25/25/20/5 %), and the two-sample
Kolmogorov-Smirnov test of the serving sample against the training values. A feature drifts
when PSI >= the PSI threshold or the KS p-value <= its threshold (keel.toml, per family).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.features import QUANTILES

SAMPLE = 128  # per feature and window: enough for KS, ~2 KB of JSON per feature
EXPECTED = (0.05, 0.20, 0.25, 0.25, 0.20, 0.05)  # shares between the training quantiles
EPS = 1e-4  # an empty bin counts as this share (PSI's log would be infinite)


@dataclass
class _Column:
    count: int = 0
    nulls: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    sample: list[float] = field(default_factory=list)
    seen: int = 0  # values offered to the reservoir


class Window:
    """Statistics of the features received since `reset`; add() is O(features)."""

    def __init__(self, seed: int = 0) -> None:
        self.columns: dict[str, _Column] = {}
        self.requests = 0
        self._rnd = random.Random(seed)

    def add(self, features: dict[str, Any]) -> None:
        self.requests += 1
        for name, v in features.items():
            c = self.columns.get(name)
            if c is None:
                c = self.columns[name] = _Column()
            c.count += 1
            if v is None or not isinstance(v, int | float) or math.isnan(v):
                c.nulls += 1
                continue
            x = float(v)
            c.total += x
            c.squares += x * x
            c.low, c.high = min(c.low, x), max(c.high, x)
            c.seen += 1
            if len(c.sample) < SAMPLE:
                c.sample.append(x)
            else:
                j = self._rnd.randrange(c.seen)
                if j < SAMPLE:
                    c.sample[j] = x

    def doc(self) -> dict[str, Any]:
        features = {}
        for name, c in sorted(self.columns.items()):
            n = c.count - c.nulls
            out: dict[str, Any] = {"count": c.count, "nulls": c.nulls}
            if n:
                mean = c.total / n
                out.update(
                    mean=mean,
                    std=math.sqrt(max(0.0, c.squares / n - mean * mean)),
                    min=c.low,
                    max=c.high,
                    quantiles={
                        f"p{int(q * 100):02d}": float(np.quantile(c.sample, q)) for q in QUANTILES
                    },
                    sample=list(c.sample),
                )
            features[name] = out
        return {"requests": self.requests, "features": features}


def psi(training: dict[str, Any], sample: list[float]) -> float:
    """Population stability index of `sample` against the training column's quantile bins."""
    q = training.get("quantiles") or {}
    found: list[float] = [
        float(q[k]) for x in QUANTILES if (k := f"p{int(x * 100):02d}") in q and q[k] is not None
    ]
    if not sample or len(found) != len(QUANTILES):
        return 0.0
    edges = [-math.inf, *found, math.inf]
    counts = np.histogram(sample, bins=np.asarray(edges))[0]
    actual = counts / max(1, len(sample))
    return float(
        sum(
            (max(a, EPS) - e) * math.log(max(a, EPS) / e)
            for a, e in zip(actual, EXPECTED, strict=True)
        )
    )


@dataclass(frozen=True)
class Drift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    drifting: bool


def compare(
    training_stats: dict[str, Any],
    training_values: dict[str, list[float]],
    serving: dict[str, Any],
    psi_threshold: float,
    ks_pvalue_threshold: float,
) -> list[Drift]:
    """Per feature both served and trained on: PSI and KS; worst (highest PSI) first."""
    from scipy.stats import ks_2samp

    out = []
    for name, s in serving["features"].items():
        t = training_stats["features"].get(name)
        sample = s.get("sample") or []
        values = training_values.get(name) or []
        if t is None or not sample or not values:
            continue
        p = psi(t, sample)
        ks = ks_2samp(values, sample)
        stat, pvalue = float(ks.statistic), float(ks.pvalue)
        out.append(
            Drift(name, p, stat, pvalue, p >= psi_threshold or pvalue <= ks_pvalue_threshold)
        )
    return sorted(out, key=lambda d: -d.psi)
