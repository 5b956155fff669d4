"""A Pydantic model derived from a family's inference.avsc: the contract is the only source of
truth for what the prediction endpoint accepts (never a hand-written model)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from keel.contracts import Contract
from keel.errors import KeelError

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_STRING = 10_000


def _annotation(f: dict[str, Any]) -> Any:
    t = f["type"]
    nullable = isinstance(t, list) and "null" in t
    base = next(x for x in t if x != "null") if isinstance(t, list) else t
    lo, hi = f.get("keel.min"), f.get("keel.max")
    kind = base["type"] if isinstance(base, dict) else base
    ann: Any
    if kind in ("double", "float"):
        ann = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=lo, le=hi)]
    elif kind in ("int", "long"):
        low, high = INT32 if kind == "int" else INT64
        ann = Annotated[
            int,
            Field(
                strict=True,
                ge=max(low, lo) if lo is not None else low,
                le=min(high, hi) if hi is not None else high,
            ),
        ]
    elif kind == "string":
        ann = Annotated[str, Field(strict=True, max_length=MAX_STRING)]
    elif kind == "boolean":
        ann = Annotated[bool, Field(strict=True)]
    elif kind == "enum":
        ann = Literal[tuple(base["symbols"])]
    else:
        raise KeelError(
            f"inference contract field {f['name']}: type {kind!r} is not supported at the API"
        )
    if f.get("keel.enum") is not None:
        ann = Literal[tuple(f["keel.enum"])]
    return ann | None if nullable else ann


def payload_model(contract: Contract) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for f in contract.fields:
        default = f.get("default", ...)
        fields[f["name"]] = (_annotation(f), Field(default, description=f.get("doc")))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        f"{contract.name}Payload",
        __config__=ConfigDict(extra="forbid", strict=True),
        **fields,
    )
    return model
