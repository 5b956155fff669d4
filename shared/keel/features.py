"""The feature-set document and its stats: what the feature service (or a step) writes and
train, serve and the audit diff read.

It is the contract between the two services (they share it through artifact bytes, never
through each other's code), so it lives in the library.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# A numeric column with at most this many distinct values is discrete (a one-hot flag, a count):
# its stats keep each value's frequency, and skew compares frequencies, not quantile bins.
MAX_VALUES = 20


@dataclass(frozen=True)
class FeatureTable:
    columns: list[str]
    rows: list[list[Any]]
    label: str | None
    y: list[Any]

    def as_doc(self) -> dict[str, Any]:
        return {"columns": self.columns, "label": self.label, "X": self.rows, "y": self.y}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FeatureTable:
        return cls(doc["columns"], doc["X"], doc["label"], doc["y"])


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def value_key(x: float) -> str:
    """A numeric value as a frequency key: 1, 1.0 and 1.0 served as JSON all read "1"."""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def numeric_kind(distinct: int, values: Any) -> str:
    """binary (only 0 and 1), discrete (at most MAX_VALUES distinct values) or continuous."""
    if distinct > MAX_VALUES:
        return "continuous"
    return "binary" if set(values) <= {"0", "1"} else "discrete"


def column_stats(values: list[Any]) -> dict[str, Any]:
    """count, nulls and kind; numeric columns: mean, std, min, max, quantiles, and for a
    discrete one each value's frequency; other columns: each category's frequency."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    out: dict[str, Any] = {"count": len(values), "nulls": len(values) - len(present)}
    if present and _numeric(present):
        arr = np.asarray(present, dtype=float)
        out.update(
            mean=float(arr.mean()),
            std=float(arr.std()),
            min=float(arr.min()),
            max=float(arr.max()),
            quantiles={f"p{int(q * 100):02d}": float(np.quantile(arr, q)) for q in QUANTILES},
        )
        distinct = np.unique(arr)
        if len(distinct) <= MAX_VALUES:
            freq = Counter(value_key(x) for x in arr)
            out["values"] = {k: freq[k] for k in sorted(freq, key=float)}
        out["kind"] = numeric_kind(len(distinct), out.get("values", ()))
    elif present:
        counts = Counter(str(v) for v in present)
        out["categories"] = {k: counts[k] for k in sorted(counts)}
        out["kind"] = "categorical"
    return out


def class_shares(values: list[Any]) -> dict[str, Any]:
    """A class label's stats: count and share per class (a mean of class codes means nothing)."""
    counts = Counter(str(v) for v in values if v is not None)
    total = sum(counts.values())
    return {
        "count": len(values),
        "nulls": len(values) - total,
        "categories": {k: counts[k] for k in sorted(counts)},
        "shares": {k: round(counts[k] / total, 6) for k in sorted(counts)} if total else {},
    }


def table_stats(table: FeatureTable, classes: bool = False) -> dict[str, Any]:
    """Per feature column stats; the label's as per-class shares when `classes` (a
    classification task), else as a numeric column."""
    cols = list(zip(*table.rows, strict=True)) if table.rows else [() for _ in table.columns]
    stats = {c: column_stats(list(v)) for c, v in zip(table.columns, cols, strict=True)}
    doc: dict[str, Any] = {"rows": len(table.rows), "features": stats}
    if table.label:
        doc["label"] = {table.label: class_shares(table.y) if classes else column_stats(table.y)}
    return doc
