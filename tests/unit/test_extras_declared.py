"""Every `need(extra, *modules)` names an extra pyproject.toml declares, and installing that
extra brings each module (issue 35: the MLflow bridge read MLmodel files with PyYAML, which
only the dev extra installed, so a user's bridge recorded every version's signature as
unreadable). The extras are expanded through the installed distributions' own requirements
(redis[hiredis], openlineage-python's attrs), so a module a dependency brings counts."""

from __future__ import annotations

import ast
import importlib.metadata as md
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return extras


def needs() -> list[tuple[str, str, list[str]]]:
    """(where, extra, modules) of every need("extra", "module", ...) with literal arguments."""
    out = []
    for folder in (ROOT / "shared" / "keel", ROOT / "services"):
        for p in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "need"
                    and node.args
                    and all(isinstance(a, ast.Constant) for a in node.args)
                ):
                    extra, *mods = (str(a.value) for a in node.args)  # type: ignore[attr-defined]
                    out.append((f"{p.relative_to(ROOT)}:{node.lineno}", extra, mods))
    return out


def brought(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The distributions `pip install 'keel[extra]'` installs (as installed here)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in extras[extra]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name == "keel":  # an extra naming Keel's own extras: read them from pyproject
            for e in req.extras:
                todo += [Requirement(r) for r in extras[e]]
            continue
        if name in seen and not req.extras:
            continue
        seen.add(name)
        try:
            requires = md.distribution(req.name).requires or []
        except md.PackageNotFoundError:
            continue  # not installed here: what it would bring cannot be told
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(
                sub.marker.evaluate({"extra": e}) for e in (*req.extras, "")
            ):
                todo.append(sub)
    return seen


def test_every_needed_extra_is_declared_and_brings_its_modules() -> None:
    extras = declared()
    from keel.extras import PURPOSE

    owners = md.packages_distributions()
    found = []
    calls = needs()
    assert any(extra == "mlflow-bridge" for _, extra, _ in calls), "the bridge names no extra"
    for where, extra, mods in calls:
        if extra not in extras:
            found.append(f"{where}: need({extra!r}) names no extra of pyproject.toml")
            continue
        if extra not in PURPOSE:
            found.append(f"{where}: keel.extras.PURPOSE says nothing of {extra!r}")
        has = brought(extra, extras)
        for m in mods:
            dists = {canonicalize_name(d) for d in owners.get(m, [])}
            if not dists & has:
                found.append(f"{where}: keel[{extra}] does not bring {m} ({sorted(dists)})")
    assert not found, "\n".join(found)
    everything = brought("all", extras)
    assert {canonicalize_name(d) for d in ("pyyaml", "fastapi", "uvicorn")} <= everything


def test_the_bridge_without_pyyaml_names_its_extra() -> None:
    """A real interpreter where `import yaml` fails: reading an MLmodel file says which extra
    to install (the delivery fails and MLflow retries it) instead of recording the version's
    signature as unreadable for good."""
    code = (
        "import sys\n"
        "sys.modules['yaml'] = None  # as if PyYAML were not installed\n"
        "from keel.extras import MissingExtra\n"
        "from keel_services.mlflow_bridge.model_files import mlmodel_doc\n"
        "try:\n"
        "    mlmodel_doc(b'flavors: {}')\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().endswith("pip install 'keel[mlflow-bridge]'"), out
