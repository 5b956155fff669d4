"""`keel[native]` names the keel-fold wheel maturin builds from this checkout (decision 0032): the
pin is the crate's version, in its pyproject.toml and Cargo.toml alike, so a wheelhouse built
from one commit satisfies it; and `all` leaves it out, so `all` installs where no compiler is."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def _toml(path: str) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / path).read_text(encoding="utf-8"))


def test_the_native_extra_pins_the_crate_it_is_built_from() -> None:
    extras = _toml("pyproject.toml")["project"]["optional-dependencies"]
    (req,) = [Requirement(r) for r in extras["native"]]
    crate = _toml("native/keel_fold/pyproject.toml")["project"]
    cargo = _toml("native/keel_fold/Cargo.toml")["package"]
    assert req.name == crate["name"] == "keel-fold"
    assert str(req.specifier) == f"=={crate['version']}", (req, crate["version"])
    assert cargo["version"] == crate["version"]
    assert _toml("native/keel_fold/pyproject.toml")["tool"]["maturin"]["module-name"] == "keel_fold"


def test_all_installs_without_a_compiler() -> None:
    extras = _toml("pyproject.toml")["project"]["optional-dependencies"]
    (everything,) = [Requirement(r) for r in extras["all"]]
    assert "native" not in everything.extras
