"""Keel as a team installs it (issue 36): a wheel built from the repository, installed with its
base dependencies into a clean venv, run from an empty directory with no checkout on sys.path.

The wheel carries `schemas/` as keel/_schemas, file for file; it installs `keel` and
`keel_services` and nothing else at the top level; the installed Keel checks its schemas, scaffolds
a project and records an ingest; the demo's contracts are found; an adapter whose extra is not
installed says, in one line, which `pip install 'keel[...]'` to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.iris_project import iris_csv

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (
    *("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "CHANGELOG.md"),
    *("shared", "services"),
)


def repo_schemas() -> dict[str, bytes]:
    """Every file under the repository's schemas/, by its path relative to schemas/."""
    root = ROOT / "schemas"
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: a build in the checkout would leave build/ and egg-info there, where
    # other processes work.
    src = tmp_path_factory.mktemp("src")
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in (*SOURCES, "schemas"):
        path = ROOT / name
        if not path.exists():
            continue
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=skip)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("keel-*.whl")
    return built


@pytest.fixture(scope="module")
def base_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with the wheel and its base dependencies only (no extras); its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True
    )
    return venv / "bin"


def outside(bin_dir: Path, cwd: Path) -> dict[str, str]:
    """An environment with no trace of the checkout: no PYTHONPATH, no KEEL_*, a scratch HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KEEL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{bin_dir}:/usr/bin:/bin",
        HOME=str(cwd / "home"),
        XDG_STATE_HOME=str(cwd / "state"),
        KEEL_ACTOR="ci",
    )
    return env


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=outside(bin_dir, cwd),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_wheel_ships_the_repository_schemas_file_for_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        shipped = {
            n.removeprefix("keel/_schemas/"): z.read(n)
            for n in z.namelist()
            if n.startswith("keel/_schemas/") and not n.endswith("/")
        }
    assert shipped == repo_schemas()


def test_the_wheel_installs_only_names_keel_owns(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        top = {n.split("/")[0] for n in z.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"keel", "keel_services"}


def test_the_installed_copy_is_the_repository_schemas(base_venv: Path, tmp_path: Path) -> None:
    found = run(
        base_venv, tmp_path, "python", "-c", "import keel.shipped as s; print(s.schema_dir())"
    )
    assert found.returncode == 0, found.stderr
    installed = Path(found.stdout.strip())
    assert installed.is_relative_to(base_venv.parent), installed  # the venv's copy, not ROOT's
    files = {
        p.relative_to(installed).as_posix(): p.read_bytes()
        for p in sorted(installed.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files == repo_schemas()


def test_installed_keel_records_from_an_empty_directory(base_venv: Path, tmp_path: Path) -> None:
    """The issue's reproduction: schemas check, init from a CSV, ingest, and the demo's set-up."""
    check = run(base_venv, tmp_path, "keel", "schemas", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    iris_csv(tmp_path / "iris.csv")
    init = run(
        base_venv, tmp_path, "keel", "init", "proj", "--from", "iris.csv", "--label", "species"
    )
    assert init.returncode == 0, init.stderr
    ingest = subprocess.run(
        [str(base_venv / "keel"), "ingest", "iris.csv", "--family", "iris"],
        cwd=tmp_path,
        env={**outside(base_venv, tmp_path), "KEEL_PROJECT": "proj/keel.toml"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "150 accepted" in ingest.stdout
    report = subprocess.run(
        [str(base_venv / "keel"), "audit", "report", "--family", "iris", "--from", "2025-01-01",
         "--to", "2026-01-01", "--out", "r.html"],
        cwd=tmp_path,
        env={**outside(base_venv, tmp_path), "KEEL_PROJECT": "proj/keel.toml"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert_one_line(report, "report")  # the review pack is in the report extra
    demo = run(
        base_venv,
        tmp_path,
        "python",
        "-c",
        "from pathlib import Path; "
        "from keel_services.entrypoints.demo.story import prepare_workdir; "
        "prepare_workdir(Path('wd'))",
    )
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "wd" / "contracts" / "breast_cancer" / "training.avsc").read_bytes() == (
        ROOT / "schemas" / "contracts" / "breast_cancer" / "training.avsc"
    ).read_bytes()


@pytest.mark.parametrize(
    ("extra", "env", "args"),
    [
        ("kafka", {"KEEL_BUS": "kafka://127.0.0.1:9"}, ["audit", "tail"]),
        ("redis", {"KEEL_VIEWS": "redis://127.0.0.1:9/0"}, ["models", "list"]),
        ("serve", {}, ["service", "run", "audit", "--port", "9"]),
        ("lineage", {}, ["lineage", "export", "--openlineage", "file:l.jsonl"]),
    ],
)
def test_a_missing_extra_names_the_install_in_one_line(
    base_venv: Path, tmp_path: Path, extra: str, env: dict[str, str], args: list[str]
) -> None:
    (tmp_path / ".keel").mkdir()  # an empty home: the command gets as far as its adapter
    done = subprocess.run(
        [str(base_venv / "keel"), *args],
        cwd=tmp_path,
        env={**outside(base_venv, tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_one_line(done, extra)


def assert_one_line(done: subprocess.CompletedProcess[str], extra: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"pip install 'keel[{extra}]'" in errors[0], done.stderr
