"""FULL_TRANSITIVE compatibility of every released version of every event schema.

A log is replayed from the start, so current code must read every version ever written
(backward) and older consumers still running must read what new producers write (forward),
against *all* earlier versions, not only the previous one (transitive).

Pairwise reader/writer checks come from Apache Avro's `avro.compatibility`; this module walks
record fields itself so that each problem names the field and the change, which the Avro checker
reports only as unordered sets of messages and locations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from keel.schemas.registry import SchemaRegistry, SchemaVersion


@dataclass(frozen=True)
class Incompatibility:
    schema: str
    reader_version: int
    writer_version: int
    field: str
    change: str

    def __str__(self) -> str:
        return (
            f"{self.schema}: v{self.reader_version} cannot read v{self.writer_version}: "
            f"field {self.field!r}: {self.change}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "reader_version": self.reader_version,
            "writer_version": self.writer_version,
            "field": self.field,
            "change": self.change,
        }


def _parse(schema: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema))


def _type_label(s: avro.schema.Schema) -> str:
    if isinstance(s, avro.schema.NamedSchema):
        return str(s.name)
    if isinstance(s, avro.schema.UnionSchema):
        return "[" + ", ".join(_type_label(b) for b in s.schemas) + "]"
    return str(s.type)


def _describe(reader: avro.schema.Schema, writer: avro.schema.Schema, messages: set[str]) -> str:
    if isinstance(reader, avro.schema.EnumSchema) and isinstance(writer, avro.schema.EnumSchema):
        missing = sorted(set(writer.symbols) - set(reader.symbols))
        if missing and reader.get_prop("default") is None:
            return f"enum symbols {missing} removed (and the reader enum has no default)"
    if _type_label(reader) != _type_label(writer):
        return f"type changed: written as {_type_label(writer)}, read as {_type_label(reader)}"
    return "; ".join(sorted(messages)) or "incompatible"


def _names_match(reader: avro.schema.NamedSchema, writer: avro.schema.NamedSchema) -> bool:
    """Java Avro's SchemaCompatibility.schemaNameEquals: the same unqualified name, or the
    writer's full name among the reader's aliases (relative aliases take its namespace)."""
    if reader.name == writer.name:
        return True
    space = reader.namespace
    given: list[str] = reader.get_prop("aliases") or []  # type: ignore[assignment]
    aliases = {a if "." in a or not space else f"{space}.{a}" for a in given}
    return writer.fullname in aliases


def _field_problems(
    reader: avro.schema.Schema,
    writer: avro.schema.Schema,
    path: str,
    active: frozenset[tuple[str, str]] = frozenset(),
) -> list[tuple[str, str]]:
    """(field path, change) pairs explaining why `reader` cannot read `writer`. `active` holds
    the record pairs being compared further up: a recursive schema meets its own pair again,
    which Java Avro treats as compatible so far (the rest of the walk decides)."""
    if isinstance(reader, avro.schema.RecordSchema) and isinstance(
        writer, avro.schema.RecordSchema
    ):
        if not _names_match(reader, writer):
            return [
                (
                    path or "<root>",
                    f"record renamed: written as {writer.fullname}, read as {reader.fullname} "
                    f"(give the reader the alias {writer.fullname!r})",
                )
            ]
        pair = (reader.fullname, writer.fullname)
        if pair in active:
            return []
        active = active | {pair}
        problems: list[tuple[str, str]] = []
        by_name = {f.name: f for f in writer.fields}
        for rf in reader.fields:
            wf = by_name.get(rf.name) or next(
                (by_name[a] for a in (rf.get_prop("aliases") or []) if a in by_name), None
            )
            fpath = f"{path}.{rf.name}" if path else rf.name
            if wf is None:
                if not rf.has_default:
                    problems.append(
                        (fpath, "absent in the writer and has no default in the reader")
                    )
                continue
            problems.extend(_field_problems(rf.type, wf.type, fpath, active))
        return problems
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return [(path or "<root>", _describe(reader, writer, result.messages))]


def check_pair(reader: SchemaVersion, writer: SchemaVersion) -> list[Incompatibility]:
    """Can data written with `writer` be read with `reader`?"""
    found = _field_problems(_parse(reader.schema), _parse(writer.schema), "")
    return [
        Incompatibility(reader.name, reader.version, writer.version, f, change)
        for f, change in found
    ]


def check_full_transitive(history: list[SchemaVersion]) -> list[Incompatibility]:
    """Every version reads every other version, in both directions."""
    problems: list[Incompatibility] = []
    for reader, writer in permutations(history, 2):
        problems.extend(check_pair(reader, writer))
    return problems


def check_registry(registry: SchemaRegistry) -> dict[str, list[Incompatibility]]:
    """Problems per schema name (empty list = compatible)."""
    return {name: check_full_transitive(registry.history(name)) for name in registry.names()}
