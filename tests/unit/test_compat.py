"""FULL_TRANSITIVE checks on real schema changes, through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keel.schemas.compat import check_registry
from keel.schemas.registry import load_registry
from keel_services.entrypoints.cli.main import app

pytestmark = pytest.mark.unit

ENUM = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}


def record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "ThingHappened", "namespace": "t", "fields": list(fields)}


BASE = record({"name": "id", "type": "string"}, {"name": "count", "type": "int"})


def write(root: Path, *versions: dict[str, Any]) -> Path:
    events = root / "events"
    events.mkdir(parents=True, exist_ok=True)
    for i, schema in enumerate(versions, start=1):
        (events / f"thing_happened.v{i}.avsc").write_text(json.dumps(schema))
    return root


def problems(root: Path) -> list[str]:
    return [str(p) for p in check_registry(load_registry(root))["ThingHappened"]]


def test_field_added_with_default_is_compatible(tmp_path: Path) -> None:
    v2 = record(*BASE["fields"], {"name": "note", "type": ["null", "string"], "default": None})
    assert problems(write(tmp_path, BASE, v2)) == []


def test_type_change_is_named(tmp_path: Path) -> None:
    v2 = record({"name": "id", "type": "string"}, {"name": "count", "type": "string"})
    found = problems(write(tmp_path, BASE, v2))
    assert found, "int -> string must be incompatible"
    assert any("'count'" in p and "type changed" in p and "v2 cannot read v1" in p for p in found)


def test_field_removed_without_default_breaks_old_readers(tmp_path: Path) -> None:
    v2 = record({"name": "id", "type": "string"})
    found = problems(write(tmp_path, BASE, v2))
    assert any("v1 cannot read v2" in p and "'count'" in p and "no default" in p for p in found)


def test_enum_symbol_removed_is_named(tmp_path: Path) -> None:
    v1 = record({"name": "color", "type": ENUM})
    v2 = record({"name": "color", "type": {**ENUM, "symbols": ["RED", "GREEN"]}})
    found = problems(write(tmp_path, v1, v2))
    assert any("'color'" in p and "BLUE" in p and "removed" in p for p in found)


def test_transitive_catches_what_pairwise_neighbours_miss(tmp_path: Path) -> None:
    # v1 -> v2 adds a defaulted field, v2 -> v3 drops the default: each neighbour pair is fine
    # backward, but v3 cannot read v1 (field absent in v1, no default in v3).
    v2 = record(*BASE["fields"], {"name": "x", "type": "int", "default": 0})
    v3 = record(*BASE["fields"], {"name": "x", "type": "int"})
    found = problems(write(tmp_path, BASE, v2, v3))
    assert any("v3 cannot read v1" in p and "'x'" in p for p in found)


def test_nested_field_paths_are_named(tmp_path: Path) -> None:
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "long"}]}
    v1 = record({"name": "inner", "type": inner})
    v2 = record({"name": "inner", "type": {**inner, "fields": [{"name": "n", "type": "boolean"}]}})
    assert any("'inner.n'" in p for p in problems(write(tmp_path, v1, v2)))


def test_cli_check_exits_nonzero_and_names_the_change(tmp_path: Path) -> None:
    v2 = record({"name": "id", "type": "string"}, {"name": "count", "type": "string"})
    root = write(tmp_path, BASE, v2)
    result = CliRunner().invoke(app, ["schemas", "check", "--dir", str(root), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    found = doc["schemas"]["ThingHappened"]["problems"]
    assert {"schema": "ThingHappened", "field": "count"}.items() <= found[0].items()


def test_cli_check_passes_on_the_repository_schemas() -> None:
    result = CliRunner().invoke(app, ["schemas", "check", "--json"])
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["unreleased"] == []


def test_editing_a_released_version_is_refused(tmp_path: Path) -> None:
    root = write(tmp_path, BASE)
    runner = CliRunner()
    assert runner.invoke(app, ["schemas", "release", "--dir", str(root)]).exit_code == 0
    assert runner.invoke(app, ["schemas", "check", "--dir", str(root)]).exit_code == 0
    edited = record(*BASE["fields"], {"name": "extra", "type": "int", "default": 1})
    (root / "events" / "thing_happened.v1.avsc").write_text(json.dumps(edited))
    result = runner.invoke(app, ["schemas", "check", "--dir", str(root)])
    assert result.exit_code == 1
    assert "released version was edited" in result.stdout


def inner(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": [{"name": "n", "type": "long"}], **extra}


def test_renaming_a_nested_record_without_an_alias_is_incompatible(tmp_path: Path) -> None:
    """Java Avro's SchemaCompatibility: named types must match by name or reader alias."""
    v1 = record({"name": "inner", "type": inner("Inner")})
    v2 = record({"name": "inner", "type": inner("Inner2")})
    found = problems(write(tmp_path / "a", v1, v2))
    assert any("'inner'" in p and "record renamed" in p for p in found), found
    aliased = record({"name": "inner", "type": inner("Inner2", aliases=["Inner"])})
    found = problems(write(tmp_path / "b", v1, aliased))
    # v2 reads v1 through its alias; v1 (without one) still cannot read v2: one direction only
    assert found and all("v1 cannot read v2" in p for p in found), found


def test_renamed_enums_and_fixed_follow_the_same_rule(tmp_path: Path) -> None:
    v1 = record({"name": "c", "type": ENUM})
    v2 = record({"name": "c", "type": {**ENUM, "name": "Colour"}})
    assert problems(write(tmp_path / "e", v1, v2))
    f1 = record({"name": "h", "type": {"type": "fixed", "name": "Hash", "size": 8}})
    f2 = record({"name": "h", "type": {"type": "fixed", "name": "Digest", "size": 8}})
    assert problems(write(tmp_path / "f", f1, f2))


@pytest.mark.parametrize("via", ["union", "direct", "array"])
def test_recursive_schemas_are_checked_not_crashed(tmp_path: Path, via: str) -> None:
    me = {"union": ["null", "t.ThingHappened"], "direct": "t.ThingHappened"}.get(
        via, {"type": "array", "items": "t.ThingHappened"}
    )
    v1 = record({"name": "v", "type": "int"}, {"name": "next", "type": me, "default": None})
    if via != "union":
        v1["fields"][1].pop("default")
    same = problems(write(tmp_path / "same", v1, v1))
    assert same == []
    v2 = record({"name": "v", "type": "string"}, *v1["fields"][1:])
    assert any("'v'" in p for p in problems(write(tmp_path / "changed", v1, v2)))
