"""Training vs inference contract reconciliation: explicit rules, pure functions.

The inference payload is what serving receives; the model was trained on the training contract.
Serving data must be readable as training data (Avro resolution with the inference contract as
writer and the training contract as reader), labels exist only in training, and every field
only in training is declared a label or metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Avro's promotions: a value written as the key can be read as any of the values.
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True)
class Problem:
    field: str
    training_type: str | None
    inference_type: str | None
    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _split(t: Any) -> tuple[Any, bool]:
    """(base type, nullable)."""
    if isinstance(t, list):
        others = [x for x in t if x != "null"]
        return (others[0] if len(others) == 1 else others), "null" in t
    return t, False


def _name(t: Any) -> str:
    base, nullable = _split(t)
    if isinstance(base, dict):
        label = base.get("logicalType") or base["type"]
        if base["type"] == "enum":
            label = f"enum{sorted(base['symbols'])}"
    else:
        label = str(base)
    return f"{label}?" if nullable else label


def _kind(base: Any) -> str:
    return base["type"] if isinstance(base, dict) else str(base)


def reconcile(training: dict[str, Any], inference: dict[str, Any]) -> list[Problem]:
    """Every way the two contracts diverge, one Problem each (empty list = compatible)."""
    tf = {f["name"]: f for f in training["fields"]}
    inf = {f["name"]: f for f in inference["fields"]}
    labels = list(training.get("keel.labels", []))
    metadata = set(training.get("keel.metadata", []))
    problems: list[Problem] = []
    if not labels or any(lbl not in tf for lbl in labels):
        missing = [lbl for lbl in labels if lbl not in tf] or ["(none declared)"]
        problems.append(
            Problem(
                missing[0],
                None,
                None,
                "label_missing",
                "the training contract must declare its label field(s) and contain them; "
                f"missing: {', '.join(missing)}",
            )
        )
    for name, f in inf.items():
        if name in labels:
            problems.append(
                Problem(
                    name,
                    _name(tf[name]["type"]) if name in tf else None,
                    _name(f["type"]),
                    "label_in_inference",
                    f"{name} is a label: it must not be sent for inference",
                )
            )
            continue
        if name not in tf:
            problems.append(
                Problem(
                    name,
                    None,
                    _name(f["type"]),
                    "missing_in_training",
                    f"{name} is sent for inference but the model was never trained on it",
                )
            )
            continue
        problems.extend(_compare(name, tf[name], f))
    for name, f in tf.items():
        if name not in inf and name not in labels and name not in metadata:
            problems.append(
                Problem(
                    name,
                    _name(f["type"]),
                    None,
                    "undeclared_training_only",
                    f"{name} exists only in training: declare it a label or metadata "
                    "(keel.labels / keel.metadata), or send it for inference",
                )
            )
    return problems


def _compare(name: str, train_field: dict[str, Any], inf_field: dict[str, Any]) -> list[Problem]:
    tt, it = train_field["type"], inf_field["type"]
    (tb, tnull), (ib, inull) = _split(tt), _split(it)
    out = []

    def problem(rule: str, message: str) -> Problem:
        return Problem(name, _name(tt), _name(it), rule, message)

    tk, ik = _kind(tb), _kind(ib)
    if tk == "enum" and ik == "enum":
        extra = sorted(set(ib["symbols"]) - set(tb["symbols"]))
        if extra:
            out.append(
                problem(
                    "enum_symbols", f"{name}: inference symbols {extra} are unknown to training"
                )
            )
    elif tk != ik and tk not in PROMOTIONS.get(ik, set()):
        out.append(
            problem(
                "type",
                f"{name}: sent as {_name(it)}, trained as {_name(tt)}: "
                f"Avro cannot promote {ik} to {tk}",
            )
        )
    if tnull != inull:
        which = "inference" if inull else "training"
        out.append(problem("nullability", f"{name}: nullable only in {which}"))
    if train_field.get("default", _MISSING) != inf_field.get("default", _MISSING):
        out.append(
            problem(
                "default",
                f"{name}: defaults differ (training {train_field.get('default', 'none')!r}, "
                f"inference {inf_field.get('default', 'none')!r})",
            )
        )
    return out


_MISSING = object()
