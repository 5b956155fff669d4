"""Contract inference, pure: from a sample of records to a training and an inference contract,
with the reasons for every decision (like TFDV's or pandera's schema inference).

- A column's type is the narrowest that holds every present value: boolean, long, double, else
  string (CSV cells are text; "12" is a long there). A column that mixes numbers and other text
  is refused: there is no type that would not silently lose one or the other.
- Missing values (absent, null, empty cell) make the field nullable (`["null", T]`, default
  null).
- A string column with few distinct values gets `keel.enum`; so does a classification label.
- Observed ranges become `keel.min` / `keel.max` only when asked (`bounds=True`).
- The label is in the training contract only (`keel.labels`); the ID column is metadata there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.errors import KeelError

ENUM_MAX = 20  # distinct values up to which a string column is an enum
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BOOL = {"true": True, "false": False}


@dataclass
class Column:
    name: str
    avro: str  # boolean | long | double | string
    nullable: bool
    enum: list[str] | None = None
    low: float | None = None
    high: float | None = None
    why: list[str] = field(default_factory=list)

    def field(self, bounds: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.avro}
        if self.nullable:
            out = {"name": self.name, "type": ["null", self.avro], "default": None}
        if self.enum is not None:
            out["keel.enum"] = self.enum
        if bounds and self.low is not None:
            out["keel.min"], out["keel.max"] = self.low, self.high
        return out


@dataclass
class Inferred:
    family: str
    task: str
    label: str
    id_column: str | None
    columns: list[Column]
    rows: int

    def training(self, bounds: bool = False) -> dict[str, Any]:
        return {
            "type": "record",
            "name": f"{_camel(self.family)}Training",
            "namespace": f"contracts.{self.family}",
            "doc": f"Training records of {self.family}: features, the label, metadata.",
            "keel.labels": [self.label],
            "keel.metadata": [self.id_column] if self.id_column else [],
            "fields": [c.field(bounds) for c in self.columns],
        }

    def inference(self, bounds: bool = False) -> dict[str, Any]:
        skip = {self.label, self.id_column}
        return {
            "type": "record",
            "name": f"{_camel(self.family)}Inference",
            "namespace": f"contracts.{self.family}",
            "doc": f"What a caller sends to {self.family}'s model: the features only.",
            "fields": [c.field(bounds) for c in self.columns if c.name not in skip],
        }

    def report(self) -> list[dict[str, Any]]:
        return [
            {"column": c.name, "type": c.avro, "nullable": c.nullable, "why": "; ".join(c.why)}
            for c in self.columns
        ]


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", name) if p) or "Family"


def _kind(v: Any) -> tuple[str, Any]:
    """(type, value as that type) of one present value; CSV text is read as what it spells."""
    if isinstance(v, bool):
        return "boolean", v
    if isinstance(v, int):
        return "long", v
    if isinstance(v, float):
        return "double", v
    if isinstance(v, str):
        s = v.strip()
        if s.lower() in _BOOL:
            return "boolean", _BOOL[s.lower()]
        if _INT.match(s):
            return "long", int(s)
        if _FLOAT.match(s):
            return "double", float(s)
        return "string", v
    return "other", v


def infer_column(name: str, values: list[Any], is_label: bool = False) -> Column:
    present = [v for v in values if v is not None and not (isinstance(v, str) and v == "")]
    if not present:
        raise KeelError(
            f"column {name!r} has no values in the sample",
            hint="drop the column or give a sample where it is filled",
        )
    kinds = [_kind(v) for v in present]
    found = {k for k, _ in kinds}
    why: list[str] = []
    if "other" in found:
        raise KeelError(
            f"column {name!r} holds nested values (lists or objects)",
            hint="flatten it into plain columns first",
        )
    if found <= {"long"}:
        avro = "long"
        why.append("every value is an integer")
    elif found <= {"long", "double"}:
        avro = "double"
        why.append("every value is a number")
    elif found == {"boolean"}:
        avro = "boolean"
        why.append("every value is true/false")
    elif found == {"string"} or (found <= {"string", "boolean"} and is_label):
        avro = "string"
        why.append("text values")
    else:
        numeric = next(str(v) for (k, _), v in zip(kinds, present, strict=True) if k != "string")
        text = next(str(v) for (k, _), v in zip(kinds, present, strict=True) if k == "string")
        raise KeelError(
            f"column {name!r} mixes types: e.g. {numeric!r} and {text!r}",
            hint="clean the column (one type per column), or make it text in the source",
        )
    nullable = len(present) < len(values)
    if nullable:
        why.append(f"{len(values) - len(present)} missing value(s): nullable")
    col = Column(name, avro, nullable, why=why)
    if avro in ("long", "double"):
        nums = [float(x) for _, x in kinds]
        col.low, col.high = min(nums), max(nums)
    distinct = sorted({str(x) for _, x in kinds})
    if avro == "string" and (is_label or len(distinct) <= ENUM_MAX):
        col.enum = distinct
        why.append(f"{len(distinct)} distinct value(s): an enum")
    return col


def infer(
    records: Iterable[Mapping[str, Any]],
    label: str,
    family: str,
    id_column: str | None = None,
    task: str | None = None,
) -> Inferred:
    rows = list(records)
    if not rows:
        raise KeelError("the sample has no records", hint="give a file with a header and rows")
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    for required, what in ((label, "label"), (id_column, "ID")):
        if required is not None and required not in names:
            raise KeelError(
                f"the {what} column {required!r} is not in the data",
                hint=f"columns: {', '.join(names)}",
            )
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise KeelError(
            f"column name(s) {bad} are not valid Avro names",
            hint="rename them to letters, digits and _ (not starting with a digit)",
        )
    columns = [infer_column(n, [r.get(n) for r in rows], is_label=n == label) for n in names]
    lab = next(c for c in columns if c.name == label)
    if lab.nullable:
        raise KeelError(
            f"the label {label!r} is missing in some records",
            hint="every training record needs its label",
        )
    classes = {str(r.get(label)) for r in rows if r.get(label) not in (None, "")}
    if task is None:
        if lab.avro == "double":
            task = "regression"
        elif lab.avro in ("string", "boolean") or len(classes) <= ENUM_MAX:
            task = "binary" if len(classes) == 2 else "multiclass"
        else:
            task = "regression"
        lab.why.append(f"the label: task {task} ({len(classes)} distinct values)")
    if task != "regression":
        if len(classes) < 2:
            raise KeelError(
                f"the label {label!r} has {len(classes)} class(es) in the sample: nothing to learn",
                hint="give a sample with at least two classes",
            )
        if task == "binary" and len(classes) != 2:
            raise KeelError(
                f"task binary, but the label {label!r} has {len(classes)} classes",
                hint="use --task multiclass",
            )
        if lab.avro == "string":
            lab.enum = sorted(classes)
    if id_column:
        ident = next(c for c in columns if c.name == id_column)
        ident.enum = None  # new records bring new IDs
        ident.why.append("the ID: metadata (kept, never given to the model)")
    return Inferred(family, task, label, id_column, columns, len(rows))
