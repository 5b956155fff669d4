"""Boundary validation against a training contract: each rule names field, value and rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from keel.contracts import compile_validator, load_contract

pytestmark = pytest.mark.unit

SCHEMA = {
    "type": "record",
    "name": "T",
    "keel.labels": ["y"],
    "keel.metadata": ["id"],
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "x", "type": "double", "keel.min": 0.0},
        {"name": "n", "type": ["null", "long"], "default": None},
        {"name": "color", "type": {"type": "enum", "name": "C", "symbols": ["R", "G"]}},
        {"name": "y", "type": "int", "keel.enum": [0, 1]},
    ],
}
GOOD = {"id": "a", "x": 1.5, "n": 3, "color": "R", "y": 1}


@pytest.fixture
def validate(tmp_path: Path) -> Any:
    p = tmp_path / "training.avsc"
    p.write_text(json.dumps(SCHEMA))
    return compile_validator(load_contract(p))


def rules(validate: Any, record: Any) -> list[tuple[str | None, str]]:
    return [(v.field, v.rule) for v in validate(record)[1]]


def test_good_record_passes_and_defaults_fill_in(validate: Any) -> None:
    clean, problems = validate({k: v for k, v in GOOD.items() if k != "n"})
    assert problems == [] and clean["n"] is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"x": "1.5"}, ("x", "type.double")),
        ({"x": -1.0}, ("x", "range.min")),
        ({"x": float("nan")}, ("x", "value.finite")),
        ({"x": float("inf")}, ("x", "value.finite")),
        ({"x": True}, ("x", "type.double")),
        ({"x": None}, ("x", "not_null")),
        ({"y": 2}, ("y", "enum")),
        ({"y": 10**30}, ("y", "type.int")),
        ({"color": "BLUE"}, ("color", "enum")),
        ({"id": 7}, ("id", "type.string")),
        ({"extra": 1}, ("extra", "unknown_field")),
    ],
)
def test_each_rule_names_the_field(
    validate: Any, change: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in rules(validate, {**GOOD, **change})


def test_missing_required_field(validate: Any) -> None:
    assert ("x", "required") in rules(validate, {k: v for k, v in GOOD.items() if k != "x"})


def test_non_object_record(validate: Any) -> None:
    assert rules(validate, [1, 2]) == [(None, "record.object")]


def test_csv_strings_are_coerced_only_when_asked(tmp_path: Path) -> None:
    p = tmp_path / "training.avsc"
    p.write_text(json.dumps(SCHEMA))
    csv_validate = compile_validator(load_contract(p), coerce_strings=True)
    row = {"id": "a", "x": "2.5", "n": "", "color": "G", "y": "0"}
    clean, problems = csv_validate(row)
    assert problems == [] and clean == {"id": "a", "x": 2.5, "n": None, "color": "G", "y": 0}
    assert ("x", "type.double") in rules(csv_validate, {**row, "x": "n/a"})


def test_contract_knows_labels_and_features(tmp_path: Path) -> None:
    p = tmp_path / "training.avsc"
    p.write_text(json.dumps(SCHEMA))
    c = load_contract(p)
    assert c.labels == ["y"] and c.feature_names == ["x", "n", "color"]
    assert len(c.fingerprint) == 16


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
    st.sampled_from(["1.5", "nan", "inf", "-3", "0", "", " 2 "]),
)


def mostly_valid(csv_mode: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Records that are usually valid (so the fast path is exercised), sometimes not."""
    good = {
        "id": st.text(min_size=1, max_size=5),
        "x": st.floats(min_value=0, max_value=10),
        "y": st.sampled_from([0, 1]),
        "z": st.integers(min_value=-(2**40), max_value=2**40),
    }
    if csv_mode:
        good = {k: v.map(str) for k, v in good.items()}
    else:
        good["flag"] = st.booleans()
    clean = st.fixed_dictionaries(good)
    spoiled = st.tuples(clean, st.sampled_from([*good, "extra"]), values).map(
        lambda t: {**t[0], t[1]: t[2]}
    )
    return st.one_of(clean, clean, spoiled)


@settings(max_examples=400, deadline=None)
@given(st.data(), st.booleans())
def test_fast_path_agrees_with_the_full_validator(data: st.DataObject, csv_mode: bool) -> None:
    record = data.draw(mostly_valid(csv_mode))
    import tempfile

    from keel.fastpath import compile_fast_path

    schema = {
        "type": "record",
        "name": "F",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "x", "type": "double", "keel.min": 0.0, "keel.max": 10.0},
            {"name": "y", "type": "int", "keel.enum": [0, 1]},
            {"name": "z", "type": "long"},
        ]
        + ([] if csv_mode else [{"name": "flag", "type": "boolean"}]),
    }
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.avsc"
        p.write_text(json.dumps(schema))
        contract = load_contract(p)
    fast = compile_fast_path(contract, coerce_strings=csv_mode)
    assert fast is not None
    accepted = fast(record)
    note(f"fast path accepted: {accepted is not None}")
    if accepted is not None:
        from keel.contracts import compile_validator as slow_only

        # the slow path on its own (bypassing the fast path inside compile_validator)
        clean, problems = _explain(slow_only, contract, csv_mode, record)
        assert problems == [] and clean == accepted


def _explain(factory: Any, contract: Any, csv_mode: bool, record: Any) -> Any:
    import keel.fastpath as fp

    saved = fp.compile_fast_path
    fp.compile_fast_path = lambda *a, **k: None  # type: ignore[assignment]
    try:
        return factory(contract, coerce_strings=csv_mode)(record)
    finally:
        fp.compile_fast_path = saved
