"""Contract inference, pure: from a sample of records to a training and an inference contract,
with the reasons for every decision (like TFDV's or pandera's schema inference).

- A column's type is the narrowest that holds every present value: boolean, long, double, else
  string (CSV cells are text; "12" is a long there). A column that mixes numbers and other text
  is refused: there is no type that would not silently lose one or the other.
- Missing values (absent, null, empty cell) make the field nullable (`["null", T]`, default
  null).
- A string column with few distinct values gets `keel.enum`; so does a classification label.
- Observed ranges become `keel.min` / `keel.max` only when asked (`bounds=True`).
- The label is in the training contract only (`keel.labels`).
- Every other column gets a role (keel.roles): a feature, or metadata the model never sees and
  callers never send (an ID, a time, text the default transform cannot encode). Metadata stays
  in the training contract (`keel.metadata`) and is absent from the inference contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.errors import KeelError
from keel.roles import FEATURE, ID, LABEL, METADATA_ROLES, TIME, UNUSED, propose

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
    role: str = FEATURE  # label | feature | id | time | unused (see keel.roles)
    values: list[str] | None = None  # a forced text feature's values, for one-hot in plugins

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
    columns: list[Column]
    rows: int

    @property
    def metadata(self) -> list[str]:
        """Kept in the training data, never given to the model, never sent by callers."""
        return [c.name for c in self.columns if c.role in METADATA_ROLES]

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.role == FEATURE]

    def training(self, bounds: bool = False) -> dict[str, Any]:
        return {
            "type": "record",
            "name": f"{_camel(self.family)}Training",
            "namespace": f"contracts.{self.family}",
            "doc": f"Training records of {self.family}: features, the label, metadata.",
            "keel.labels": [self.label],
            "keel.metadata": self.metadata,
            "fields": [c.field(bounds) for c in self.columns],
        }

    def inference(self, bounds: bool = False) -> dict[str, Any]:
        return {
            "type": "record",
            "name": f"{_camel(self.family)}Inference",
            "namespace": f"contracts.{self.family}",
            "doc": f"What a caller sends to {self.family}'s model: the features only.",
            "fields": [c.field(bounds) for c in self.features],
        }

    def report(self) -> list[dict[str, Any]]:
        return [
            {
                "column": c.name,
                "role": c.role,
                "type": c.avro,
                "nullable": c.nullable,
                "why": "; ".join(c.why),
            }
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
    *,
    ids: Sequence[str] = (),
    times: Sequence[str] = (),
    features: Sequence[str] = (),
    task: str | None = None,
) -> Inferred:
    """Contracts from a sample. `ids`, `times` and `features` are the user's word on a column's
    role; every other column gets the role keel.roles proposes, with the reason in its `why`."""
    rows = list(records)
    if not rows:
        raise KeelError("the sample has no records", hint="give a file with a header and rows")
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    _check_named(names, label, {"--id": ids, "--time": times, "--feature": features})
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise KeelError(
            f"column name(s) {bad} are not valid Avro names",
            hint="rename them to letters, digits and _ (not starting with a digit)"
            + (
                "; a name holding , ; | or a tab means the file's delimiter was not recognised: "
                "make every line have the same number of delimiters"
                if any(ch in n for n in bad for ch in ",;|\t")
                else ""
            ),
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
    lab.role = LABEL
    for c in columns:
        if c is not lab:
            present = [v for r in rows if (v := r.get(c.name)) is not None and v != ""]
            _assign_role(c, present, len(rows), ids, times, features)
    return Inferred(family, task, label, columns, len(rows))


def _check_named(names: list[str], label: str, given: dict[str, Sequence[str]]) -> None:
    """Every column the user named exists, and has one role only."""
    seen: dict[str, str] = {label: "--label"}
    for what, cols in given.items():
        for name in cols:
            if name not in names:
                raise KeelError(
                    f"the {what} column {name!r} is not in the data",
                    hint=f"columns: {', '.join(names)}",
                )
            if name in seen and seen[name] != what:
                raise KeelError(
                    f"column {name!r} is given both as {seen[name]} and as {what}",
                    hint="give each column one role",
                )
            seen[name] = what
    if label not in names:
        raise KeelError(
            f"the label column {label!r} is not in the data", hint=f"columns: {', '.join(names)}"
        )


def _assign_role(
    c: Column,
    present: list[Any],
    rows: int,
    ids: Sequence[str],
    times: Sequence[str],
    features: Sequence[str],
) -> None:
    if c.name in features:
        c.role = FEATURE
        c.why.append("a feature (--feature)")
        if c.avro == "string" and c.enum is None:
            # no keel.enum: a new value is no reason to refuse a record; it one-hots to zeros
            c.values = sorted({str(v) for v in present})
            c.why.append(f"one-hot over its {len(c.values)} sampled values in the transform")
        return
    if c.name in ids or c.name in times:
        c.role, why = (ID, "an ID (--id)") if c.name in ids else (TIME, "a time (--time)")
    elif (proposed := propose(c.name, c.avro, present, rows)) is not None:
        c.role, why = proposed
        why = f"proposed {c.role}: {why}"
    elif c.avro == "string" and c.enum is None:
        c.role = UNUSED
        why = (
            f"text with over {ENUM_MAX} distinct values: left out of the features (the "
            "transform one-hots categories only)"
        )
    else:
        return
    c.enum = None  # new records bring new IDs, dates and texts
    c.why.append(f"{why}; metadata: kept, never given to the model, not sent by callers")
