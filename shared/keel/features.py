"""The feature-set document: what the feature service writes and train reads.

It is the contract between the two services (they share it through artifact bytes, never
through each other's code), so it lives in the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
