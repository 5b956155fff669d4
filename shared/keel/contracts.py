"""Data contracts per model family: `training.avsc` (has labels) and `inference.avsc` (no labels).

Avro says the types; a few `keel.*` attributes (ignored by every Avro tool) say what Avro cannot:
`keel.labels` / `keel.metadata` on the record, `keel.min` / `keel.max` / `keel.enum` on fields.
`compile_validator` turns a contract into a pure function record -> violations, built once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from keel.errors import KeelError


@dataclass(frozen=True)
class Violation:
    field: str | None
    value: str | None
    rule: str
    message: str


@dataclass(frozen=True)
class Contract:
    name: str
    path: Path
    schema: dict[str, Any]
    fingerprint: str

    @property
    def fields(self) -> list[dict[str, Any]]:
        return list(self.schema["fields"])

    @property
    def labels(self) -> list[str]:
        return list(self.schema.get("keel.labels", []))

    @property
    def metadata(self) -> list[str]:
        return list(self.schema.get("keel.metadata", []))

    @property
    def feature_names(self) -> list[str]:
        skip = set(self.labels) | set(self.metadata)
        return [f["name"] for f in self.fields if f["name"] not in skip]


def serving_inputs(training: Contract, inference: Contract) -> list[str]:
    """What the user's transform may see, in training as in serving: the inference contract's
    features, never a label or a metadata field of either contract (parity by construction)."""
    withheld = set(training.labels) | set(training.metadata)
    return [n for n in inference.feature_names if n not in withheld]


def load_contract(path: Path) -> Contract:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        parsed = parse_schema(schema)
    except FileNotFoundError:
        raise KeelError(
            f"contract {path} does not exist", hint="check the path in keel.toml"
        ) from None
    except Exception as exc:
        raise KeelError(f"contract {path} is not a valid Avro schema: {exc}") from exc
    if schema.get("type") != "record":
        raise KeelError(f"contract {path} must be an Avro record")
    return Contract(str(schema["name"]), path, schema, contract_fingerprint(schema, parsed))


def contract_fingerprint(schema: dict[str, Any], parsed: Any) -> str:
    """CRC-64-AVRO of the parsing canonical form, extended with every `keel.*` annotation
    (record and fields): Avro's canonical form drops them, yet they change what is a label,
    metadata or a bound, so a contract that changes only them is a different contract."""
    canonical = to_parsing_canonical_form(parsed)
    notes = {
        "record": {k: v for k, v in schema.items() if k.startswith("keel.")},
        "fields": {
            f["name"]: {k: v for k, v in f.items() if k.startswith("keel.")}
            for f in schema.get("fields", [])
            if any(k.startswith("keel.") for k in f)
        },
    }
    if not notes["record"] and not notes["fields"]:
        return str(fingerprint(canonical, "CRC-64-AVRO"))
    extended = canonical + "\n" + json.dumps(notes, sort_keys=True, separators=(",", ":"))
    return str(fingerprint(extended, "CRC-64-AVRO"))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


Check = Callable[[Any], tuple[Any, Violation | None]]


def _type_check(name: str, avro_type: Any, coerce_strings: bool) -> Check:
    """(coerced value, violation) for one field's Avro type."""
    nullable = isinstance(avro_type, list) and "null" in avro_type
    base = avro_type
    if isinstance(avro_type, list):
        others = [t for t in avro_type if t != "null"]
        base = others[0] if len(others) == 1 else others
    if isinstance(base, dict) and base.get("type") == "enum":
        symbols = set(base["symbols"])
        base = "enum"
    else:
        symbols = set()

    def bad(value: Any, rule: str, msg: str) -> tuple[Any, Violation]:
        return value, Violation(name, _short(value), rule, f"{name}: {msg}")

    def check(value: Any) -> tuple[Any, Violation | None]:
        if value is None or (coerce_strings and value == ""):
            if nullable:
                return None, None
            return bad(value, "not_null", "is empty but the contract does not allow null")
        if base in ("double", "float"):
            if isinstance(value, str) and coerce_strings:
                try:
                    value = float(value)
                except ValueError:
                    return bad(value, "type.double", "is not a number")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return bad(value, "type.double", f"expected a number, got {type(value).__name__}")
            value = float(value)
            if not math.isfinite(value):
                return bad(value, "value.finite", "NaN and infinities are not allowed")
            return value, None
        if base in ("int", "long"):
            if isinstance(value, str) and coerce_strings:
                try:
                    value = int(value)
                except ValueError:
                    return bad(value, "type.int", "is not an integer")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                return bad(value, "type.int", f"expected an integer, got {type(value).__name__}")
            if base == "int" and not -(2**31) <= value < 2**31:
                return bad(value, "type.int", "does not fit a 32-bit int")
            return value, None
        if base == "string":
            if not isinstance(value, str):
                return bad(value, "type.string", f"expected a string, got {type(value).__name__}")
            return value, None
        if base == "boolean":
            if coerce_strings and isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            if not isinstance(value, bool):
                return bad(value, "type.boolean", "expected true or false")
            return value, None
        if base == "enum":
            if value not in symbols:
                return bad(value, "enum", f"not one of {sorted(symbols)}")
            return value, None
        return bad(value, "type.unsupported", f"type {base!r} is not supported at the boundary")

    return check


def compile_validator(
    contract: Contract, coerce_strings: bool = False
) -> Callable[[Any], tuple[dict[str, Any], list[Violation]]]:
    """A pure function record -> (clean record, violations). Built once per contract."""
    checks: list[tuple[str, Check, bool, Any, dict[str, Any]]] = []
    for f in contract.fields:
        has_default = "default" in f
        checks.append(
            (
                f["name"],
                _type_check(f["name"], f["type"], coerce_strings),
                has_default,
                f.get("default"),
                f,
            )
        )
    known = {name for name, *_ in checks}
    from keel.fastpath import compile_fast_path

    fast = compile_fast_path(contract, coerce_strings)

    def validate(record: Any) -> tuple[dict[str, Any], list[Violation]]:
        if fast is not None:
            clean = fast(record)
            if clean is not None:
                return clean, []
        return explain(record)

    def explain(record: Any) -> tuple[dict[str, Any], list[Violation]]:
        if not isinstance(record, dict):
            kind = type(record).__name__
            return {}, [
                Violation(
                    None, _short(record), "record.object", f"a record must be an object, got {kind}"
                )
            ]
        out: dict[str, Any] = {}
        problems: list[Violation] = []
        for name, check, has_default, default, spec in checks:
            if name not in record:
                if has_default:
                    out[name] = default
                    continue
                problems.append(
                    Violation(name, None, "required", f"{name}: missing, and it has no default")
                )
                continue
            value, problem = check(record[name])
            if problem is None and value is not None:
                problem = _domain(name, value, spec)
            if problem is not None:
                problems.append(problem)
            out[name] = value
        for extra in record.keys() - known:
            problems.append(
                Violation(
                    str(extra),
                    _short(record[extra]),
                    "unknown_field",
                    f"{extra}: not in contract {contract.name}",
                )
            )
        return out, problems

    return validate


def _domain(name: str, value: Any, spec: dict[str, Any]) -> Violation | None:
    lo, hi, allowed = spec.get("keel.min"), spec.get("keel.max"), spec.get("keel.enum")
    if lo is not None and value < lo:
        return Violation(
            name, _short(value), "range.min", f"{name}: {value} is below the minimum {lo}"
        )
    if hi is not None and value > hi:
        return Violation(
            name, _short(value), "range.max", f"{name}: {value} is above the maximum {hi}"
        )
    if allowed is not None and value not in allowed:
        return Violation(name, _short(value), "enum", f"{name}: {value!r} is not one of {allowed}")
    return None
