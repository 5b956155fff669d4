"""Load every released event schema from `schemas/events/` and index it by fingerprint.

File naming is `<snake_name>.v<N>.avsc`; `common/` holds named types (the envelope, gate
results) that event files reference by full name. Each event schema is expanded (references
inlined) before its Parsing Canonical Form and CRC-64-AVRO fingerprint are taken, so any Avro
implementation can read an event from the expanded schema alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro.schema import expand_schema, fingerprint, parse_schema, to_parsing_canonical_form

from keel.errors import KeelError

_FILE_RE = re.compile(r"^(?P<stem>[a-z0-9_]+)\.v(?P<version>[0-9]+)\.avsc$")


class SchemaFileError(KeelError):
    """An .avsc file that cannot be parsed or is misnamed."""

    hint = "fix the file named in the message; released versions must never be edited"


def default_schema_dir() -> Path:
    """$KEEL_SCHEMAS, else `schemas/` of the checkout, else the copy installed with Keel."""
    from keel.shipped import schema_dir

    return schema_dir()


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of one event schema."""

    name: str  # record name, e.g. "ModelPromoted"
    version: int
    path: Path
    schema: dict[str, Any]  # expanded JSON (references inlined)
    parsed: Any = field(repr=False, compare=False)  # fastavro-parsed form, reused forever
    canonical: str = field(repr=False)
    fingerprint: bytes = field(repr=False)  # 8 bytes, little-endian CRC-64-AVRO

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()


class SchemaRegistry:
    """Every released version of every event type, resolvable by name or by fingerprint."""

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_fp: dict[bytes, SchemaVersion] = {}
        self._by_name: dict[str, list[SchemaVersion]] = {}
        self.generation = 0  # moves whenever a released version is added (readers may change)
        for v in versions:
            self.add(v)

    def add(self, v: SchemaVersion) -> None:
        self.generation += 1
        self._by_fp[v.fingerprint] = v
        history = self._by_name.setdefault(v.name, [])
        # Keep every version even when fingerprints coincide: the canonical form drops defaults,
        # so two versions differing only in a default share a fingerprint yet differ in
        # compatibility. Decoding is unaffected (a writer's defaults are never used).
        if all(h.version != v.version for h in history):
            history.append(v)
            history.sort(key=lambda h: h.version)

    def learn(self, v: SchemaVersion) -> None:
        """Make a writer schema resolvable by fingerprint without making it a released version."""
        self._by_fp.setdefault(v.fingerprint, v)

    def knows(self, name: str) -> bool:
        return name in self._by_name

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fp.get(fp)

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._by_name[name][-1]
        except KeyError:
            raise KeelError(
                f"no schema named {name!r}",
                hint=f"known event types: {', '.join(sorted(self._by_name))}",
            ) from None

    def history(self, name: str) -> list[SchemaVersion]:
        return list(self._by_name.get(name, []))

    def names(self) -> list[str]:
        return sorted(self._by_name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaFileError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SchemaFileError(f"{path}: top level must be a JSON object (a record schema)")
    return data


def load_common(common_dir: Path) -> dict[str, Any]:
    """Parse the shared named types once; returns fastavro's named-schemas map."""
    named: dict[str, Any] = {}
    if common_dir.is_dir():
        for path in sorted(common_dir.glob("*.avsc")):
            try:
                parse_schema(_read_json(path), named_schemas=named)
            except Exception as exc:  # fastavro raises several types; name the file
                raise SchemaFileError(f"{path}: {exc}") from exc
    return named


def build_version(path: Path, common: dict[str, Any], version: int | None = None) -> SchemaVersion:
    """Parse one event file against the common named types and fingerprint it."""
    raw = _read_json(path)
    if version is None:
        m = _FILE_RE.match(path.name)
        if not m:
            raise SchemaFileError(f"{path.name}: expected a name like model_promoted.v1.avsc")
        version = int(m["version"])
    try:
        parsed = parse_schema(raw, named_schemas=dict(common))
        expanded = clean_schema(expand_schema(parsed))
        canonical = to_parsing_canonical_form(expanded)
    except Exception as exc:
        raise SchemaFileError(f"{path}: {exc}") from exc
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    name = str(raw.get("name", "")).rsplit(".", 1)[-1]
    if not isinstance(expanded, dict):
        raise SchemaFileError(f"{path}: an event schema must be a record")
    return SchemaVersion(name, version, path, expanded, parsed, canonical, fp)


def clean_schema(schema: Any) -> Any:
    """Avro JSON without fastavro's bookkeeping (`__fastavro_parsed`, `__named_schemas`): what
    is published must be a schema any Avro implementation reads, and no bigger than it is."""
    if isinstance(schema, dict):
        return {k: clean_schema(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [clean_schema(v) for v in schema]
    return schema


def version_from_json(text: str, version: int = 0) -> SchemaVersion:
    """A writer schema learnt from the schemas topic (self-contained, references inlined)."""
    raw = json.loads(text)
    parsed = parse_schema(raw)
    expanded = clean_schema(expand_schema(parsed))
    canonical = to_parsing_canonical_form(expanded)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    name = str(raw.get("name", "")).rsplit(".", 1)[-1]
    if not isinstance(expanded, dict):
        raise SchemaFileError(f"schema {fp.hex()} from the schemas topic is not a record")
    return SchemaVersion(
        name, version, Path(f"<schemas topic {fp.hex()}>"), expanded, parsed, canonical, fp
    )


def load_registry(schema_dir: Path | None = None) -> SchemaRegistry:
    """Every `events/*.v*.avsc` under `schema_dir` (default: keel.shipped.schema_dir)."""
    root = schema_dir or default_schema_dir()
    events_dir = root / "events"
    if not events_dir.is_dir():
        raise SchemaFileError(
            f"no event schemas at {events_dir}",
            hint="unset KEEL_SCHEMAS to use the schemas installed with Keel, or point it at a "
            "directory holding events/",
        )
    common = load_common(events_dir / "common")
    return SchemaRegistry(build_version(p, common) for p in sorted(events_dir.glob("*.avsc")))
