"""Generate `keel/events/generated.py` (frozen dataclasses) from the latest event schemas.

The .avsc files are the one source of truth; the Python classes are derived from them and a test
fails when the generated module is stale (`keel schemas codegen` rewrites it).
"""

from __future__ import annotations

from typing import Any

from keel.schemas.registry import SchemaRegistry

_PRIMITIVES = {
    "string": "str",
    "long": "int",
    "int": "int",
    "double": "float",
    "float": "float",
    "boolean": "bool",
    "bytes": "bytes",
}


class _Gen:
    def __init__(self) -> None:
        self.classes: dict[str, list[str]] = {}  # nested record classes, by short name

    def annotation(self, t: Any) -> str:
        if isinstance(t, str):
            return _PRIMITIVES[t]
        if isinstance(t, list):
            others = [b for b in t if b != "null"]
            if len(others) != 1:
                raise ValueError(f"only [null, T] unions are supported, got {t}")
            inner = self.annotation(others[0])
            return f"{inner} | None" if "null" in t else inner
        kind = t["type"]
        if t.get("logicalType") == "timestamp-millis":
            return "datetime"
        if kind == "array":
            return f"tuple[{self.annotation(t['items'])}, ...]"
        if kind == "map":
            return f"Mapping[str, {self.annotation(t['values'])}]"
        if kind == "record":
            return self.record(t)
        return self.annotation(kind)

    def to_avro(self, t: Any, expr: str) -> str:
        """Expression converting a Python value `expr` of type `t` to its Avro datum."""
        if isinstance(t, list):
            inner = next(b for b in t if b != "null")
            conv = self.to_avro(inner, expr)
            return expr if conv == expr else f"(None if {expr} is None else {conv})"
        if isinstance(t, dict):
            if t["type"] == "record":
                return f"{expr}.to_avro()"
            if t["type"] == "array":
                item = self.to_avro(t["items"], "x")
                return f"list({expr})" if item == "x" else f"[{item} for x in {expr}]"
            if t["type"] == "map":
                return f"dict({expr})"
        return expr

    def from_avro(self, t: Any, expr: str) -> str:
        if isinstance(t, list):
            inner = next(b for b in t if b != "null")
            conv = self.from_avro(inner, expr)
            return expr if conv == expr else f"(None if {expr} is None else {conv})"
        if isinstance(t, dict):
            if t["type"] == "record":
                return f"{t['name'].rsplit('.', 1)[-1]}.from_avro({expr})"
            if t["type"] == "array":
                item = self.from_avro(t["items"], "x")
                return f"tuple({expr})" if item == "x" else f"tuple({item} for x in {expr})"
            if t["type"] == "map":
                return f"dict({expr})"
        return expr

    def record(self, schema: dict[str, Any], event: bool = False) -> str:
        name = str(schema["name"]).rsplit(".", 1)[-1]
        if name in self.classes:
            return name
        self.classes[name] = []  # reserve: nested records are emitted before their users
        lines = ["", "", "@dataclass(frozen=True, kw_only=True, slots=True)", f"class {name}:"]
        doc = schema.get("doc")
        if doc:
            lines.append(f'    """{doc}"""')
            lines.append("")
        if event:
            lines.append(f'    EVENT_TYPE: ClassVar[str] = "{name}"')
        to_items, from_items = [], []
        for f in schema["fields"]:
            ann = self.annotation(f["type"])
            default = ""
            get = f'r["{f["name"]}"]'
            if "default" in f:
                d = f["default"]
                if isinstance(d, dict):
                    default, get = " = field(default_factory=dict)", f'r.get("{f["name"]}") or {{}}'
                elif isinstance(d, list):  # arrays are tuples here: immutable, so a plain default
                    default, get = f" = {tuple(d)!r}", f'r.get("{f["name"]}") or []'
                else:  # a record written before the field existed reads as its default
                    default = f" = {d!r}"
                    get = f'r.get("{f["name"]}"' + (")" if d is None else f", {d!r})")
            lines.append(f"    {f['name']}: {ann}{default}")
            to_items.append(f'"{f["name"]}": {self.to_avro(f["type"], "self." + f["name"])}')
            from_items.append(f"{f['name']}={self.from_avro(f['type'], get)}")
        lines += ["", "    def to_avro(self) -> dict[str, Any]:", "        return {"]
        lines += [f"            {item}," for item in to_items]
        lines += [
            "        }",
            "",
            "    @classmethod",
            f"    def from_avro(cls, r: dict[str, Any]) -> {name}:",
        ]
        lines += (
            ["        return cls("]
            + [f"            {item}," for item in from_items]
            + ["        )"]
        )
        self.classes[name] = lines
        return name


HEADER = '''"""Generated from schemas/events/*.avsc. Do not edit; run `keel schemas codegen`."""

# ruff: noqa: E501
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
'''


def generate(registry: SchemaRegistry) -> str:
    gen = _Gen()
    names = registry.names()
    for name in names:
        gen.record(registry.latest(name).schema, event=True)
    body = [line for lines in gen.classes.values() for line in lines]
    union = " | ".join(names)
    footer = [
        "",
        "",
        f"Event = {union}",
        "",
        "EVENT_TYPES: dict[str, type[Event]] = {",
        *[f'    "{n}": {n},' for n in names],
        "}",
    ]
    return HEADER + "\n".join(body + footer) + "\n"
