"""Contract inference decisions and refusals, without files."""

from __future__ import annotations

import pytest

from keel.errors import KeelError
from keel.infer import infer
from tests.business_table import FEATURES, LABEL, business_rows

pytestmark = pytest.mark.unit


def rows() -> list[dict[str, object]]:
    return [
        {"id": "a", "n": "1", "x": "0.5", "flag": "true", "colour": "red", "y": "yes"},
        {"id": "b", "n": "2", "x": "", "flag": "false", "colour": "blue", "y": "no"},
        {"id": "c", "n": "3", "x": "1e3", "flag": "true", "colour": "red", "y": "yes"},
    ]


def test_types_nullability_enums_label_and_id() -> None:
    inf = infer(rows(), "y", "demo_family", ids=["id"])
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

    inf = infer(rows(), "y", "f", ids=["id"])
    path = tmp_path / "training.avsc"
    path.write_text(json.dumps(inf.training()))
    validate = compile_validator(load_contract(path), coerce_strings=True)
    ok = {"id": "z", "n": "4", "x": "1.5", "flag": "true", "colour": "red", "y": "yes"}
    assert validate(ok)[1] == []
    problems = validate({**ok, "y": "maybe"})[1]
    assert [p.rule for p in problems] == ["enum"]
    assert [p.rule for p in validate({**ok, "colour": "green"})[1]] == ["enum"]


def test_ids_dates_and_wide_text_are_proposed_as_metadata_not_features() -> None:
    """Issue 34: without --id, customer_id and event_date became required features (every
    caller got 422 for columns the model never uses) and the 40-value text column was left
    out of the transform yet still required at serving."""
    inf = infer(business_rows(300), LABEL, "shop")
    by = {c.name: c for c in inf.columns}
    assert (by["customer_id"].role, by["event_date"].role, by["city"].role) == (
        "id",
        "time",
        "unused",
    )
    assert all(by[n].enum is None for n in ("customer_id", "event_date", "city"))
    assert [c.name for c in inf.features] == FEATURES
    assert [f["name"] for f in inf.inference()["fields"]] == FEATURES
    assert inf.training()["keel.metadata"] == ["customer_id", "event_date", "city"]
    report = {r["column"]: r for r in inf.report()}
    assert "named like an identifier" in report["customer_id"]["why"]
    assert "ISO date" in report["event_date"]["why"]
    assert "over 20 distinct values" in report["city"]["why"]
    assert report["monthly_spend"]["nullable"] and report["plan"]["role"] == "feature"


@pytest.mark.parametrize(
    ("column", "values", "role"),
    [
        ("id", [str(i) for i in range(50)], "id"),  # an integer id: not a numeric feature
        ("n", [str(i + 7) for i in range(50)], "id"),  # unique consecutive: a row number
        ("orderId", [str(i * 3) for i in range(50)], "id"),
        ("ref", [f"R-{i:05d}" for i in range(50)], "id"),  # unique codes without spaces
        ("created_at", ["2025-03-01T10:00:00Z"] * 50, "time"),
        ("signup_ts", [str(1_700_000_000 + i * 3) for i in range(50)], "time"),
        ("visits", [str(i * 3) for i in range(50)], "feature"),  # unique, not consecutive
        ("time_on_site", [str(i % 7) for i in range(50)], "feature"),  # not a timestamp
        ("score", [str(i / 7) for i in range(50)], "feature"),
    ],
)
def test_role_of_a_column(column: str, values: list[str], role: str) -> None:
    data = [{column: v, "y": "ab"[i % 2]} for i, v in enumerate(values)]
    assert next(c for c in infer(data, "y", "f").columns if c.name == column).role == role


def test_several_ids_and_times_and_a_forced_feature() -> None:
    """Repeated --id kept only the last; --feature takes a proposal back."""
    data = business_rows(100)
    for i, r in enumerate(data):
        r["account"] = str(i % 30)
    inf = infer(data, LABEL, "shop", ids=["customer_id", "account"], features=["city"])
    by = {c.name: c for c in inf.columns}
    assert inf.metadata == ["customer_id", "event_date", "account"]
    assert by["city"].role == "feature" and by["city"].enum is None
    assert by["city"].values is not None and len(by["city"].values) > 20
    assert "city" in [f["name"] for f in inf.inference()["fields"]]
    with pytest.raises(KeelError, match="both as --id and as --feature") as err:
        infer(data, LABEL, "shop", ids=["city"], features=["city"])
    assert err.value.hint
    with pytest.raises(KeelError, match="--time column 'when' is not in the data"):
        infer(data, LABEL, "shop", times=["when"])


def test_a_name_with_a_delimiter_hints_at_the_delimiter() -> None:
    with pytest.raises(KeelError, match="not valid Avro names") as err:
        infer([{"a;b;y": "1;2;x"}, {"a;b;y": "3;4;z"}], "a;b;y", "f")
    assert "delimiter" in (err.value.hint or "")
