"""`keel.step(code=f)` for a function typed into `python -` or `python -c`: there is no file to
digest, so Keel says so and how to give the code's version, instead of a raw FileNotFoundError
('<stdin>') or ValueError; the option it names works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.iris_project import FAMILY, init_project

pytestmark = pytest.mark.e2e

SCRIPT = f"""
from keel_services import step

def summarise():
    return b"150 flowers, 3 species"

with step("summary", family="{FAMILY}", code=summarise, outputs=["notes"]{{extra}}) as s:
    if not s.done:
        s.output(summarise(), kind="notes")
print("stored", s.ids["notes"])
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return init_project(tmp_path_factory.mktemp("iris"))


def python(env: dict[str, str], how: str, script: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-"] if how == "stdin" else [sys.executable, "-c", script]
    return subprocess.run(
        argv,
        input=script if how == "stdin" else None,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(env["KEEL_HOME"]).parent,
    )


@pytest.mark.parametrize("how", ["stdin", "dash_c"])
def test_code_without_a_file_says_how_to_version_it(env: dict[str, str], how: str) -> None:
    failed = python(env, how, SCRIPT.format(extra=""))
    assert failed.returncode != 0
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("keel.errors.KeelError: cannot digest the step's code"), last
    assert "__main__ has no source file" in last and "code_version=" in last
    # the option the message names works: the step stores its output
    done = python(env, how, SCRIPT.format(extra=f", code_version='summary-{how}-v1'"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stored ")
