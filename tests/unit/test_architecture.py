"""The two import rules of the composition root (docs/decisions/0014): the `keel` library imports
nothing from `services`, and no service imports another service's modules. Walks every import
statement (including those inside functions), so a lazy import cannot hide."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
COMPOSITION_ROOT = "entrypoints"
APP = "keel_services"  # the import name of the services/ folder (a name Keel owns)


def imported(path: Path, base: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative imports resolved against its
    package (`base` is the directory its top-level package lives in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parts = list(path.relative_to(base).with_suffix("").parts[:-1])
    if parts[:1] == ["services"]:
        parts[0] = APP  # the services/ folder is installed as keel_services
    package = ".".join(parts)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_pkg = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                out.append((node.lineno, f"{base_pkg}.{node.module}" if node.module else base_pkg))
            else:
                out.append((node.lineno, node.module or ""))
    return out


def test_the_library_imports_nothing_from_services() -> None:
    library = ROOT / "shared" / "keel"
    found = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p in sorted(library.rglob("*.py"))
        for line, mod in imported(p, ROOT / "shared")
        if mod.split(".")[0] in ("services", APP)
    ]
    assert not found, "\n".join(found)


def test_no_service_imports_another_service() -> None:
    names = {p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists()}
    assert {"ingest", "feature", "train", "promote", "deploy", "serve", "audit"} <= names
    found = []
    for p in sorted(SERVICES.rglob("*.py")):
        rel = p.relative_to(SERVICES)
        if len(rel.parts) < 2 and rel.name != "__init__.py":
            found.append(f"services/{rel}: a module outside any service (helpers go to keel)")
            continue
        own = rel.parts[0]
        if own == COMPOSITION_ROOT:
            continue  # the one place that wires every service
        for line, mod in imported(p):
            parts = mod.split(".")
            if parts[0] in ("services", APP) and (len(parts) < 2 or parts[1] != own):
                found.append(f"services/{rel}:{line} ({own}) imports {mod}")
    assert not found, "\n".join(found)


def test_the_walk_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The checker itself: an import inside a function is found (a test that cannot fail
    proves nothing)."""
    sample = ROOT / "services" / "train" / "handlers.py"
    mods = {m for _, m in imported(sample)}
    assert "keel.artifacts.canonical" in mods and "keel_services.train.domain" in mods
    lazy = ast.parse("def f():\n    from keel_services.feature import handlers\n")
    assert any(
        isinstance(n, ast.ImportFrom) and n.module == "keel_services.feature"
        for n in ast.walk(lazy)
    )
