"""A generated fast path for boundary validation: straight-line code for one contract.

Most records are valid, and proving a record valid needs no explanation, so the contract is
compiled once into a Python function (as fastjsonschema does) that either returns the clean
record or None. None sends the record to the full validator, which finds every problem and
words it. A property test checks that the two agree on every record the fast path accepts.
Contracts with types the generator does not cover get no fast path (everything goes the slow,
explaining way).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from keel.contracts import Contract

FastPath = Callable[[Any], dict[str, Any] | None]
_NUMERIC = {"double": "float", "float": "float", "int": "int", "long": "int"}


def compile_fast_path(contract: Contract, coerce_strings: bool = False) -> FastPath | None:
    fields = contract.fields
    for f in fields:
        if not isinstance(f["type"], str) or f["type"] not in (*_NUMERIC, "string", "boolean"):
            return None  # unions, enums, records: the full validator handles them
        if f["type"] == "boolean" and coerce_strings:
            return None
    names = [f["name"] for f in fields]
    lines = [
        "def fast(r, _float=float, _int=int, _str=str, _bool=bool, _dict=dict, _inf=_INF):",
        f"    if type(r) is not _dict or len(r) != {len(names)}:",
        "        return None",
        "    try:",
        *[f"        v{i} = r[{n!r}]" for i, n in enumerate(names)],
        "    except KeyError:",
        "        return None",
    ]
    if coerce_strings:
        # CSV: every raw value is text; "" means null, which these fields do not allow.
        raw = " or ".join(f"type(v{i}) is not _str or not v{i}" for i in range(len(names)))
        lines += [f"    if {raw}:", "        return None", "    try:"]
        for i, f in enumerate(fields):
            if f["type"] in _NUMERIC:
                lines.append(f"        v{i} = _{_NUMERIC[f['type']]}(v{i})")
        lines += ["        pass", "    except ValueError:", "        return None"]
    for i, f in enumerate(fields):
        lines.append(f"    if {_condition(f, f'v{i}')}:")
        lines.append("        return None")
    if coerce_strings:
        lines.append("    return {" + ", ".join(f"{n!r}: v{i}" for i, n in enumerate(names)) + "}")
    else:
        lines.append("    return r")
    namespace: dict[str, Any] = {"_INF": math.inf}
    exec(compile("\n".join(lines), f"<fast path for {contract.name}>", "exec"), namespace)
    fn: FastPath = namespace["fast"]
    return fn


def _condition(f: dict[str, Any], v: str) -> str:
    """Python expression that is true when value `v` is NOT certainly valid."""
    t = f["type"]
    lo, hi, allowed = f.get("keel.min"), f.get("keel.max"), f.get("keel.enum")
    if t == "string":
        # an enum'd string (e.g. a class label) must be one of its values: else the slow path
        # names the violation
        extra = f" or {v} not in {tuple(allowed)!r}" if allowed is not None else ""
        return f"type({v}) is not _str{extra}"
    if t == "boolean":
        return f"type({v}) is not _bool"
    py = _NUMERIC[t]
    low = "-_inf" if lo is None else repr(float(lo) if py == "float" else lo)
    high = "_inf" if hi is None else repr(float(hi) if py == "float" else hi)
    # Chained comparisons are false for NaN, so NaN and infinities take the slow path.
    cmp_lo = "<=" if lo is not None else "<"
    cmp_hi = "<=" if hi is not None else "<"
    cond = f"type({v}) is not _{py} or not ({low} {cmp_lo} {v} {cmp_hi} {high})"
    if t == "int":
        cond += f" or not (-2147483648 <= {v} < 2147483648)"
    if allowed is not None:
        cond += f" or {v} not in {tuple(allowed)!r}"
    return cond
