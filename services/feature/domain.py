"""Feature decisions, pure: apply the user's transform, describe the result."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from keel.features import FeatureTable, table_stats

__all__ = ["FeatureTable", "build_table", "table_stats"]


def build_table(
    records: Sequence[dict[str, Any]],
    transform: Callable[[dict[str, Any]], dict[str, Any]],
    label: str | None,
    inputs: Collection[str] | None = None,
) -> FeatureTable:
    """Run the transform on every record; columns are the sorted union of what it returns.
    `inputs`: the only fields the transform sees (the inference contract's features), so a
    model can never depend on a label or metadata field that serving will not have."""
    allowed = None if inputs is None else frozenset(inputs)
    feats = [
        transform(r if allowed is None else {k: v for k, v in r.items() if k in allowed})
        for r in records
    ]
    columns = sorted({k for f in feats for k in f})
    rows = [[f.get(c) for c in columns] for f in feats]
    y = [r.get(label) for r in records] if label else []
    return FeatureTable(columns, rows, label, y)
