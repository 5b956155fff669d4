"""Contract inference decisions and refusals, without files."""

from __future__ import annotations

import pytest

from keel.errors import KeelError
from keel.infer import infer

pytestmark = pytest.mark.unit


def rows() -> list[dict[str, object]]:
    return [
        {"id": "a", "n": "1", "x": "0.5", "flag": "true", "colour": "red", "y": "yes"},
        {"id": "b", "n": "2", "x": "", "flag": "false", "colour": "blue", "y": "no"},
        {"id": "c", "n": "3", "x": "1e3", "flag": "true", "colour": "red", "y": "yes"},
    ]


def test_types_nullability_enums_label_and_id() -> None:
    inf = infer(rows(), "y", "demo_family", id_column="id")
    by = {c.name: c for c in inf.columns}
    assert (by["n"].avro, by["x"].avro, by["flag"].avro) == ("long", "double", "boolean")
    assert by["x"].nullable and not by["n"].nullable
    assert by["colour"].enum == ["blue", "red"] and by["id"].enum is None
    assert inf.task == "binary" and by["y"].enum == ["no", "yes"]
    training, inference = inf.training(), inf.inference(bounds=True)
    assert training["keel.labels"] == ["y"] and training["keel.metadata"] == ["id"]
    assert [f["name"] for f in inference["fields"]] == ["n", "x", "flag", "colour"]
    x = next(f for f in inference["fields"] if f["name"] == "x")
    assert x["type"] == ["null", "double"] and x["default"] is None
    assert (x["keel.min"], x["keel.max"]) == (0.5, 1000.0)
    assert "keel.min" not in next(f for f in training["fields"] if f["name"] == "x")
    assert all(r["why"] for r in inf.report())


def test_tasks_from_the_label() -> None:
    numbers = [{"f": float(i), "y": float(i) * 1.5} for i in range(30)]
    assert infer(numbers, "y", "r").task == "regression"
    classes = [{"f": float(i), "y": i % 3} for i in range(30)]
    assert infer(classes, "y", "m").task == "multiclass"


@pytest.mark.parametrize(
    ("data", "label", "message"),
    [
        ([], "y", "no records"),
        ([{"f": 1, "y": 1}], "label_x", "label column 'label_x' is not in the data"),
        ([{"f": 1, "y": "a"}, {"f": 2, "y": "a"}], "y", r"1 class\(es\)"),
        ([{"f": "1", "y": "a"}, {"f": "one", "y": "b"}], "y", "column 'f' mixes types"),
        ([{"f x": 1, "y": "a"}, {"f x": 2, "y": "b"}], "y", "not valid Avro names"),
        ([{"f": 1, "y": "a"}, {"f": 2, "y": None}], "y", "missing in some records"),
    ],
)
def test_bad_samples_are_refused_with_what_to_do(
    data: list[dict[str, object]], label: str, message: str
) -> None:
    with pytest.raises(KeelError, match=message) as err:
        infer(data, label, "f")
    assert err.value.hint


def test_an_inferred_string_label_enum_is_enforced_at_the_boundary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by `keel init`: the compiled fast path let any string through an enum'd string
    field (a class label not in the contract was accepted)."""
    import json

    from keel.contracts import compile_validator, load_contract

    inf = infer(rows(), "y", "f", id_column="id")
    path = tmp_path / "training.avsc"
    path.write_text(json.dumps(inf.training()))
    validate = compile_validator(load_contract(path), coerce_strings=True)
    ok = {"id": "z", "n": "4", "x": "1.5", "flag": "true", "colour": "red", "y": "yes"}
    assert validate(ok)[1] == []
    problems = validate({**ok, "y": "maybe"})[1]
    assert [p.rule for p in problems] == ["enum"]
    assert [p.rule for p in validate({**ok, "colour": "green"})[1]] == ["enum"]
