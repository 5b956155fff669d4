"""Reconciliation of training and inference contracts: each case with its verdict and message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from keel.reconcile import reconcile

pytestmark = pytest.mark.unit

TRAINING: dict[str, Any] = {
    "type": "record",
    "name": "T",
    "keel.labels": ["y"],
    "keel.metadata": ["id"],
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "x", "type": "double"},
        {"name": "n", "type": "long"},
        {"name": "color", "type": {"type": "enum", "name": "C", "symbols": ["R", "G", "B"]}},
        {"name": "y", "type": "int"},
    ],
}
INFERENCE: dict[str, Any] = {
    "type": "record",
    "name": "I",
    "fields": [
        {"name": "x", "type": "double"},
        {"name": "n", "type": "long"},
        {"name": "color", "type": {"type": "enum", "name": "C", "symbols": ["R", "G", "B"]}},
    ],
}


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


def rules(t: dict[str, Any], i: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.field, p.rule) for p in reconcile(t, i)]


def test_the_baseline_is_compatible() -> None:
    assert reconcile(TRAINING, INFERENCE) == []


def test_optional_field_added_to_both_is_compatible() -> None:
    t, i = copy.deepcopy(TRAINING), copy.deepcopy(INFERENCE)
    opt = {"name": "note", "type": ["null", "string"], "default": None}
    t["fields"].append(dict(opt))
    i["fields"].append(dict(opt))
    assert reconcile(t, i) == []


def test_optional_field_added_only_to_inference_is_not() -> None:
    i = copy.deepcopy(INFERENCE)
    i["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    (p,) = reconcile(TRAINING, i)
    assert (p.field, p.rule) == (
        "note",
        "missing_in_training",
    ) and "never trained on it" in p.message


def test_label_removed_is_not() -> None:
    t = copy.deepcopy(TRAINING)
    t["fields"] = [f for f in t["fields"] if f["name"] != "y"]
    assert ("y", "label_missing") in rules(t, INFERENCE)


def test_label_sent_for_inference_is_not() -> None:
    i = copy.deepcopy(INFERENCE)
    i["fields"].append({"name": "y", "type": "int"})
    assert ("y", "label_in_inference") in rules(TRAINING, i)


def test_type_narrowed_is_not_and_the_message_names_both_types() -> None:
    i = copy.deepcopy(INFERENCE)
    field(i, "n")["type"] = "double"  # serving sends double where the model learnt long
    (p,) = reconcile(TRAINING, i)
    assert (p.field, p.rule, p.training_type, p.inference_type) == ("n", "type", "long", "double")
    assert "cannot promote double to long" in p.message


def test_type_widened_is_compatible() -> None:
    i = copy.deepcopy(INFERENCE)
    field(i, "n")["type"] = "int"  # int -> long is an Avro promotion
    field(i, "x")["type"] = "float"
    assert reconcile(TRAINING, i) == []


def test_enum_symbol_added_in_inference_is_not_removed_is() -> None:
    added = copy.deepcopy(INFERENCE)
    field(added, "color")["type"]["symbols"].append("PURPLE")
    (p,) = reconcile(TRAINING, added)
    assert p.rule == "enum_symbols" and "PURPLE" in p.message
    removed = copy.deepcopy(INFERENCE)
    field(removed, "color")["type"]["symbols"].remove("B")
    assert reconcile(TRAINING, removed) == []


def test_nullable_changed_is_not() -> None:
    i = copy.deepcopy(INFERENCE)
    field(i, "x")["type"] = ["null", "double"]
    field(i, "x")["default"] = None
    found = rules(TRAINING, i)
    assert ("x", "nullability") in found and ("x", "default") in found


def test_undeclared_training_only_field_is_not() -> None:
    t = copy.deepcopy(TRAINING)
    t["fields"].append({"name": "batch", "type": "string"})
    assert rules(t, INFERENCE) == [("batch", "undeclared_training_only")]
