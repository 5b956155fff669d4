"""The two import rules of the composition root (docs/decisions/0014): the `keel` library imports
nothing from `services`, and no service imports another service's modules. Walks every import
statement (including those inside functions), so a lazy import cannot hide."""

from __future__ import annotations

import ast
import re
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
        if rel.parts == ("__init__.py",):
            own = COMPOSITION_ROOT  # the application's front door re-exports the root's API
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


# -- configuration only through Settings (issue 35) -------------------------------------------
ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
# The only environment reads outside keel/settings.py, each with why Settings cannot do it.
# Entries are (path ending, variable or "os.environ" for a whole-environment use), so a file that
# moves keeps its entry and a new read in a listed file still fails.
ENV_ALLOWED = {
    # `keel --help` draws Typer's page without importing pydantic (decision 0024): Typer's and
    # Rich's own switches, read as Typer reads them.
    ("cli/quick_help.py", "GITHUB_ACTIONS"),
    ("cli/quick_help.py", "FORCE_COLOR"),
    ("cli/quick_help.py", "PY_COLORS"),
    ("cli/quick_help.py", "TERMINAL_WIDTH"),
    ("cli/quick_help.py", "_TYPER_FORCE_DISABLE_TERMINAL"),
    # a step's subprocess inherits this process's environment (a copy, not a setting)
    ("cli/step_cmd.py", "os.environ"),
    # the queries' fast path hands the environment to keel.quick_settings, which reads the
    # text and path KEEL_* variables as Settings does, without pydantic (decision 0024), and
    # leaves any other KEEL_* variable to Settings (tests/unit/test_quick_settings.py)
    ("cli/fast.py", "os.environ"),
}


def environment_uses(source: str) -> list[tuple[int, str]]:
    """(line, variable) of every use of the process environment: os.environ / os.getenv & co.
    (also imported by name or through an alias of os); the variable is the literal name read,
    or "os.environ" when the whole environment is used (a copy, an iteration)."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    os_names = {"os"} | {
        a.asname or a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for a in n.names
        if a.name == "os"
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [(node.lineno, f"os.{a.name}") for a in node.names if a.name in ENV_NAMES]
        use = (
            isinstance(node, ast.Attribute)
            and node.attr in ENV_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        )
        if use:
            found.append((node.lineno, _variable(node, parent)))
    return sorted(found)


def _variable(node: ast.AST, parent: dict[ast.AST, ast.AST]) -> str:
    """The literal name in os.environ["X"], os.environ.get("X"), os.getenv("X") and the like."""
    up = parent.get(node)
    arg: ast.AST | None = None
    if isinstance(up, ast.Subscript):
        arg = up.slice
    elif isinstance(up, ast.Call) and up.args:
        arg = up.args[0]  # os.getenv("X")
    elif isinstance(up, ast.Attribute):
        call = parent.get(up)
        if isinstance(call, ast.Call) and call.args:
            arg = call.args[0]  # os.environ.get("X"), .setdefault, .pop
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return "os.environ"


def test_configuration_is_read_only_through_settings() -> None:
    """Every KEEL_* (and other) variable is read in keel/settings.py, where the generated
    configuration reference finds it; the library and the services take a Settings."""
    found = []
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel == "shared/keel/settings.py":
                continue
            for line, var in environment_uses(p.read_text(encoding="utf-8")):
                if not any(rel.endswith(f"/{end}") and var == v for end, v in ENV_ALLOWED):
                    found.append(f"{rel}:{line} reads {var} (add a Settings field instead)")
    assert not found, "\n".join(found)


def test_the_environment_walk_sees_every_spelling() -> None:
    sample = (
        "import os\nimport os as o\nfrom os import getenv\n"
        "a = os.environ['A']\nb = o.environ.get('B')\nc = os.getenv('C')\n"
        "d = {**os.environ}\nos.environ.setdefault('E', '1')\n"
    )
    assert environment_uses(sample) == [
        (3, "os.getenv"),
        (4, "A"),
        (5, "B"),
        (6, "C"),
        (7, "os.environ"),
        (8, "E"),
    ]


# -- one way to build a projector (issue 35) --------------------------------------------------
PROJECTOR_FACTORY = "shared/keel/audit/projectors.py"


def constructed(source: str, name: str) -> list[int]:
    """Lines where `name(...)` (or `module.name(...)`) is called."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    )


def test_projectors_are_built_by_one_factory() -> None:
    """Who signs checkpoints, which witness they extend and which events are trusted are
    decided in keel.audit.projectors, not at each of ten call sites."""
    found = []
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel == PROJECTOR_FACTORY:
                continue
            found += [
                f"{rel}:{line} builds a Projector (use keel.audit.projectors.projector_for)"
                for line in constructed(p.read_text(encoding="utf-8"), "Projector")
            ]
    assert not found, "\n".join(found)
    assert constructed("a = p.Projector(1)\nb = Projector(2)\nc = Other(3)\n", "Projector") == [
        1,
        2,
    ]


# -- one module owns the view keys (issue 35) -------------------------------------------------
VIEW_KEYS = "shared/keel/audit/keys.py"


def view_key_literals(source: str, prefixes: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, text) of string literals (f-string parts included) that start a view key:
    `model:`, `serving:`... followed by nothing or a key's first character; `audit: text`,
    `models:/uri` or an SSE `event: status` line are not keys."""
    key = re.compile(rf"^(?:{'|'.join(map(re.escape, prefixes))}):(?![\s/])")
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and key.match(node.value)
    )


def test_view_keys_are_spelled_in_one_module() -> None:
    from keel.audit.keys import PREFIXES

    found = []
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel == VIEW_KEYS:
                continue
            found += [
                f"{rel}:{line} spells the view key {text!r} (use keel.audit.keys)"
                for line, text in view_key_literals(p.read_text(encoding="utf-8"), PREFIXES)
            ]
    assert not found, "\n".join(found)
    sample = 'a = f"model:{m}"\nb = "audit:trees"\nc = "audit: a sentence"\nd = "models:/x"\n'
    assert view_key_literals(sample, PREFIXES) == [(1, "model:"), (2, "audit:trees")]


# -- the library never finds its application (issue 35, decision 0025) ------------------------
APP_NAMES = ("services", APP)
DYNAMIC_IMPORTS = {"import_module", "find_spec", "__import__", "entry_points", "load_module"}


def _names_app(text: str) -> bool:
    """A literal that is (or starts) a module path into the application: "keel_services",
    "keel_services.serve", "services.audit:app" - not prose that mentions a service."""
    return any(text == n or text.startswith((f"{n}.", f"{n}:")) for n in APP_NAMES)


def application_lookups(source: str) -> list[tuple[int, str]]:
    """(line, what) of every way a module can reach the application at run time without an
    import statement: an entry-point lookup, a module name built from a string (an f-string or
    a concatenation handed to import_module/find_spec/__import__), and any string literal
    (docstrings aside) naming an application module."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    in_fstrings = {
        id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib.metadata":
            found += [
                (node.lineno, f"imports {a.name} (a lookup by entry point)")
                for a in node.names
                if a.name == "entry_points"
            ]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "entry_points":
                found.append((node.lineno, "entry_points(...) (a lookup by entry point)"))
            elif name in DYNAMIC_IMPORTS and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.JoinedStr | ast.BinOp):
                    found.append((node.lineno, f"{name}(<a module name built from strings>)"))
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and _names_app(str(head.value)):
                found.append((node.lineno, f"builds a module name f{head.value!r}..."))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and id(node) not in in_fstrings
            and _names_app(node.value)
        ):
            found.append((node.lineno, f"names {node.value!r}"))
    return sorted(found)


def test_the_library_never_finds_its_application() -> None:
    """Imports are not the only way up: `keel` looked its composition root up through an entry
    point, built f"services.{name}" to version a service, and ran the `keel` command itself.
    None of those may come back (the application injects what the library needs)."""
    library = ROOT / "shared" / "keel"
    found = [
        f"{p.relative_to(ROOT)}:{line} {what}"
        for p in sorted(library.rglob("*.py"))
        for line, what in application_lookups(p.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)


def test_the_console_script_and_entry_points_are_the_applications() -> None:
    """`keel` (the command) is the application's; no entry point leads back into the library
    for it to discover its application by."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    scripts = project.get("scripts", {})
    assert scripts, "pyproject.toml names no console script"
    wrong = {k: v for k, v in scripts.items() if not v.startswith(f"{APP}.entrypoints.")}
    assert not wrong, f"console scripts outside the composition root: {wrong}"
    groups = project.get("entry-points", {})
    assert not groups, f"entry points the library could look its application up by: {groups}"


def test_the_lookup_walk_sees_every_spelling() -> None:
    sample = (
        '"""Docs may say keel_services.serve."""\n'
        "from importlib.metadata import entry_points\n"
        "import importlib, importlib.metadata as md\n"
        "a = md.entry_points(group='keel.wiring')\n"
        "b = importlib.util.find_spec(f'keel_services.{name}')\n"
        "c = importlib.import_module('services.' + name)\n"
        "d = 'keel_services.entrypoints.wiring'\n"
        "e = 'the serve service'\n"
        "f = importlib.import_module(target)\n"
    )
    assert [line for line, _ in application_lookups(sample)] == [2, 4, 5, 5, 6, 6, 7]


# -- one producing module per event type (issue 35, decision 0025) ----------------------------
# Every event type is built in one module: a type two services record (ModelDeployed,
# PromotionRejected, EventQuarantined, ArtifactRejected, TrainingFailed) goes through the
# library's builder, each producer handing in its own envelope.


def event_types() -> set[str]:
    """Every event type: the generated classes with an EVENT_TYPE."""
    tree = ast.parse((ROOT / "shared/keel/events/generated.py").read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(s, ast.Assign | ast.AnnAssign)
            and "EVENT_TYPE" in ast.unparse(s.targets[0] if isinstance(s, ast.Assign) else s.target)
            for s in node.body
        )
    }


def producing_modules() -> dict[str, set[str]]:
    """Event type -> the modules (outside tests and the generated models) that construct it."""
    types = event_types()
    out: dict[str, set[str]] = {}
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel == "shared/keel/events/generated.py":
                continue
            for t in types & set(_called_names(p.read_text(encoding="utf-8"))):
                out.setdefault(t, set()).add(rel)
    return out


def _called_names(source: str) -> list[str]:
    return [
        f.id if isinstance(f, ast.Name) else f.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for f in [node.func]
        if isinstance(f, ast.Name | ast.Attribute)
    ]


def test_each_event_type_has_one_producing_module() -> None:
    """Two modules building one event type drift apart (a step's ModelTrained and train's), and
    whose code version it carries becomes a guess. Shared shapes go through one builder."""
    assert {"ModelTrained", "DriftDetected", "RetrainRequested"} <= event_types()
    found = [
        f"{t} is built in {len(mods)} modules: {', '.join(sorted(mods))}"
        for t, mods in sorted(producing_modules().items())
        if len(mods) > 1
    ]
    assert not found, "\n".join(found)


# -- one read surface (issue 35) --------------------------------------------------------------
READ_SURFACE = "keel.audit.reads"
READ_INTERNALS = ("keel.audit.readmodel", "keel.audit.view_queries", "keel.audit.inventory")


def imported_names(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import, `from a.b import c` giving both a.b and a.b.c (a
    module imported from its package is named only after `import`)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
            out.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return out


def read_internal_imports(source: str) -> list[tuple[int, str]]:
    return sorted(
        (line, name)
        for line, name in imported_names(source)
        if any(name == m or name.startswith(m + ".") for m in READ_INTERNALS)
    )


def test_reads_go_through_one_surface() -> None:
    """ReadModel, the audit questions and the inventory are the internals of keel.audit.reads:
    services, commands, the HTTP apps and keel.Client all read through `Reads`, so no caller
    picks between four surfaces that answer the same question differently."""
    own = {f"shared/{m.replace('.', '/')}.py" for m in (READ_SURFACE, *READ_INTERNALS)}
    found = []
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel in own:
                continue
            found += [
                f"{rel}:{line} imports {name} (read through {READ_SURFACE}.Reads)"
                for line, name in read_internal_imports(p.read_text(encoding="utf-8"))
            ]
    assert not found, "\n".join(found)
    sample = (
        "from keel.audit import view_queries as vq\nimport keel.audit.inventory\n"
        "from keel.audit.readmodel import Interval\nfrom keel.audit.reads import Reads\n"
        "def f():\n    from keel.audit import keys, inventory\n"
    )
    assert [line for line, _ in read_internal_imports(sample)] == [1, 2, 3, 3, 6]


# -- one bootstrap, in the composition root (issue 35) ---------------------------------------
CONTAINER = "services/entrypoints/container.py"  # build(settings) -> App: the root's one
BOOTSTRAP_ALLOWED = {
    # keel.Client used from Python without the application (`keel.Client()`, documented) opens
    # its own runtime; the application's entrypoints hand it the container's (App.client)
    "shared/keel/client.py",
    # the audit API's replica watcher is a child process: it gets settings through the pipe,
    # not objects, and opens its own runtime from them
    "shared/keel/audit/freshness.py",
}


def test_only_the_composition_root_bootstraps() -> None:
    """The CLI's commands, the HTTP apps' factories, the service runner and the demo receive
    the container (keel_services.entrypoints.container.build) instead of each opening a
    runtime with its own wiring (issue 35 counted 19 bootstrap() sites in 8 modules)."""
    found = []
    for folder in (ROOT / "shared" / "keel", SERVICES):
        for p in sorted(folder.rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if rel == CONTAINER or rel in BOOTSTRAP_ALLOWED:
                continue
            found += [
                f"{rel}:{line} calls bootstrap() (take the container: "
                "keel_services.entrypoints.container.build)"
                for line in constructed(p.read_text(encoding="utf-8"), "bootstrap")
            ]
    assert not found, "\n".join(found)
    container = (ROOT / CONTAINER).read_text(encoding="utf-8")
    assert len(constructed(container, "bootstrap")) == 1
