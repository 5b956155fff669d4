"""Training/serving skew, pure: bounded window statistics of served features, and their
comparison with the training statistics of the model that served them.

A window keeps, per feature, a count, nulls, sum, sum of squares, min, max, a reservoir
sample of at most SAMPLE values (Vitter's algorithm R with a seeded generator) and, while a
feature shows at most MAX_VALUES distinct values, each value's count: memory is
O(features x (SAMPLE + MAX_VALUES)) whatever the traffic. Its document has the fields of the
feature service's column statistics (keel.features.column_stats) plus the sample.

Comparison per feature, by the test that fits its kind (the training stats' `kind`, or read
off the training values for documents written before kinds were recorded):
- binary and discrete (a one-hot flag, a count: at most MAX_VALUES distinct training values):
  value frequencies. Quantile bins collapse on such a feature (p05 = p50 = 0 for a flag), so
  PSI over them reads 6-7 on training-like traffic; instead the values whose expected count in
  the window is below RARE are pooled into one cell, and PSI and Pearson's chi-square are
  computed over those cells (an empty cell counts as EPS, never log 0).
- continuous: PSI over the bins cut at the training quantiles, with the training values'
  own shares per bin as the expectation (ties at a cut are then counted the same on both
  sides), and the two-sample Kolmogorov-Smirnov test against the training values.
A feature drifts when PSI >= the PSI threshold or the p-value <= its threshold (keel.toml, per
family). A feature with fewer than MIN_VALUES served values is not judged: it says so.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.extras import need
from keel.features import MAX_VALUES, QUANTILES, numeric_kind, value_key

SAMPLE = 128  # per feature and window: enough for KS, ~2 KB of JSON per feature
MIN_VALUES = 50  # fewer served values than this: PSI and the tests are noise, not evidence
RARE = 5.0  # a value expected fewer times than this in the window is pooled (chi-square's rule)
EPS = 1e-4  # an empty cell counts as this share (PSI's log would be infinite)


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
    values: Counter[str] | None = field(default_factory=Counter)  # None past MAX_VALUES


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
            if (
                v is None
                or isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
            ):
                c.nulls += 1
                continue
            x = float(v)
            c.total += x
            c.squares += x * x
            c.low, c.high = min(c.low, x), max(c.high, x)
            if c.values is not None:
                c.values[value_key(x)] += 1
                if len(c.values) > MAX_VALUES:
                    c.values = None  # continuous: the sample speaks for it
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
                if c.values is not None:
                    out["values"] = dict(sorted(c.values.items(), key=lambda kv: float(kv[0])))
            features[name] = out
        return {"requests": self.requests, "features": features}


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two share vectors over the same cells."""
    return float(
        sum(
            (max(a, EPS) - max(e, EPS)) * math.log(max(a, EPS) / max(e, EPS))
            for e, a in zip(expected, actual, strict=True)
        )
    )


@dataclass(frozen=True)
class Drift:
    """One feature's verdict. `test` is "chi-square" (binary, discrete) or "ks" (continuous);
    `statistic` and `pvalue` are that test's; `note` says why a feature was not judged."""

    feature: str
    kind: str
    test: str
    psi: float
    statistic: float
    pvalue: float
    drifting: bool
    note: str | None = None


def kind_of(training: dict[str, Any], values: list[float]) -> str:
    """The training stats' kind, or (stats written before kinds were) the values'."""
    kind = training.get("kind")
    if kind in ("binary", "discrete", "continuous"):
        return str(kind)
    keys = {value_key(v) for v in values}
    return numeric_kind(len(keys), keys)


def frequencies(
    training: dict[str, Any], values: list[float], serving: dict[str, Any]
) -> tuple[float, float, float]:
    """(PSI, chi-square statistic, p-value) of the served value counts against the training
    frequencies, rare values pooled into one cell."""
    need("skew", "scipy")
    from scipy.stats import chisquare

    trained = training.get("values") or Counter(value_key(v) for v in values)
    served = serving.get("values") or Counter(value_key(v) for v in serving.get("sample") or [])
    n, total = sum(served.values()), sum(trained.values())
    keys = sorted(set(trained) | set(served), key=float)
    expected = [trained.get(k, 0) / total for k in keys]
    cells_e, cells_a, rest_e, rest_a = [], [], 0.0, 0
    for k, e in zip(keys, expected, strict=True):
        if e * n < RARE:
            rest_e, rest_a = rest_e + e, rest_a + served.get(k, 0)
        else:
            cells_e.append(e)
            cells_a.append(served.get(k, 0))
    if rest_e or rest_a:
        cells_e.append(rest_e)
        cells_a.append(rest_a)
    if len(cells_e) < 2:
        return 0.0, 0.0, 1.0
    shares = [a / n for a in cells_a]
    # a value never seen in training: its expectation is EPS, so chi-square reads it as the
    # surprise it is rather than dividing by zero
    exp_counts = np.asarray([max(e, EPS) for e in cells_e])
    exp_counts = exp_counts / exp_counts.sum() * n
    stat, pvalue = chisquare(np.asarray(cells_a, dtype=float), exp_counts)
    return psi(cells_e, shares), float(stat), float(pvalue)


def binned(
    training: dict[str, Any], values: list[float], sample: list[float]
) -> tuple[float, float, float]:
    """(PSI over the training quantile bins, KS statistic, KS p-value)."""
    need("skew", "scipy")
    from scipy.stats import ks_2samp

    q = training.get("quantiles") or {}
    found = [q.get(f"p{int(x * 100):02d}") for x in QUANTILES]
    cuts = [float(c) for c in found if c is not None]
    if len(cuts) != len(QUANTILES):
        cuts = [float(np.quantile(values, x)) for x in QUANTILES]
    edges = np.asarray([-math.inf, *sorted(set(cuts)), math.inf])
    expected = np.histogram(values, bins=edges)[0] / len(values)
    actual = np.histogram(sample, bins=edges)[0] / len(sample)
    ks = ks_2samp(values, sample)
    return psi(list(expected), list(actual)), float(ks.statistic), float(ks.pvalue)


def compare(
    training_stats: dict[str, Any],
    training_values: dict[str, list[float]],
    serving: dict[str, Any],
    psi_threshold: float,
    pvalue_threshold: float,
) -> list[Drift]:
    """Per feature both served and trained on, the test its kind calls for; worst (highest
    PSI) first, features too thinly served to judge last."""
    out = []
    for name, s in serving["features"].items():
        t = training_stats["features"].get(name)
        sample = s.get("sample") or []
        values = training_values.get(name) or []
        if t is None or not sample or not values:
            continue
        kind = kind_of(t, values)
        test = "ks" if kind == "continuous" else "chi-square"
        served = s.get("count", 0) - s.get("nulls", 0)
        if served < MIN_VALUES:
            note = f"too few requests to judge: {served} of {MIN_VALUES}"
            out.append(Drift(name, kind, test, 0.0, 0.0, 1.0, False, note))
            continue
        if kind == "continuous":
            p, stat, pvalue = binned(t, values, sample)
        else:
            p, stat, pvalue = frequencies(t, values, s)
        drifting = p >= psi_threshold or pvalue <= pvalue_threshold
        out.append(Drift(name, kind, test, p, stat, pvalue, drifting))
    return sorted(out, key=lambda d: (d.note is not None, -d.psi))
