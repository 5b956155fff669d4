"""Artifact IDs: deterministic in dict order, sensitive to every input; code versions too."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.artifacts.codeversion import code_version
from keel.artifacts.ids import NotCanonical, artifact_id, canonical_json

pytestmark = pytest.mark.unit

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
params_st = st.dictionaries(
    st.text(max_size=8),
    st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=8,
    ),
    max_size=6,
)
ids_st = st.lists(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64), max_size=5)


@given(params_st, ids_st, st.randoms())
def test_same_inputs_in_any_order_give_the_same_id(
    params: dict[str, Any], inputs: list[str], rnd: Any
) -> None:
    shuffled_items = list(params.items())
    rnd.shuffle(shuffled_items)
    shuffled_inputs = list(inputs)
    rnd.shuffle(shuffled_inputs)
    a = artifact_id("model", "cv", params, inputs)
    b = artifact_id("model", "cv", dict(shuffled_items), shuffled_inputs)
    assert a == b


@given(params_st, st.text(min_size=1, max_size=8), st.integers())
def test_any_param_change_changes_the_id(params: dict[str, Any], key: str, value: int) -> None:
    changed = dict(params)
    changed[key] = ["changed", value] if params.get(key) != ["changed", value] else "other"
    assert artifact_id("model", "cv", params) != artifact_id("model", "cv", changed)


def test_every_component_enters_the_id() -> None:
    base = artifact_id("model", "cv1", {"a": 1}, ["x" * 64], "d1")
    assert base != artifact_id("dataset", "cv1", {"a": 1}, ["x" * 64], "d1")
    assert base != artifact_id("model", "cv2", {"a": 1}, ["x" * 64], "d1")
    assert base != artifact_id("model", "cv1", {"a": 2}, ["x" * 64], "d1")
    assert base != artifact_id("model", "cv1", {"a": 1.0}, ["x" * 64], "d1")
    assert base != artifact_id("model", "cv1", {"a": 1}, ["y" * 64], "d1")
    assert base != artifact_id("model", "cv1", {"a": 1}, ["x" * 64], "d2")
    assert base != artifact_id("model", "cv1", {"a": 1}, ["x" * 64], None)


def test_non_canonical_params_are_refused_with_the_path() -> None:
    with pytest.raises(NotCanonical, match=r"\$\.lr is nan"):
        canonical_json({"lr": float("nan")})
    with pytest.raises(NotCanonical, match="set"):
        canonical_json({"tags": {1, 2}})


def test_code_version_follows_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.artifacts import codeversion

    monkeypatch.syspath_prepend(str(tmp_path))
    plugin = tmp_path / "user_plugin_cv.py"
    plugin.write_text("def transform(x):\n    return x\n")
    mod = importlib.import_module("user_plugin_cv")
    first = code_version(mod.transform, "keel")
    assert first == code_version("keel", mod)  # order and form do not matter
    plugin.write_text("def transform(x):\n    return x + 1\n")
    codeversion._module_digest.cache_clear()
    assert code_version(mod.transform, "keel") != first
    sys.modules.pop("user_plugin_cv", None)
