"""Queries operators run in loops import only what they use (issue 36): on a demo home, the
audit and inventory questions load none of scikit-learn, pandas, FastAPI, boto3, the Kafka
clients or matplotlib, and answer as before. (Start-up times: bench/bench_cli_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_imports import HEAVY, LISTING_KEEL
from tests.demo_home import demo_home

pytestmark = pytest.mark.e2e

QUERIES = [
    ["audit", "serving", "--env", "prod"],
    ["audit", "serving", "--env", "prod", "--json"],
    ["models", "list"],
    ["families"],
    ["datasets", "list"],
    ["deployments", "list", "--env", "prod"],
    ["artifacts", "list"],
    ["audit", "history"],
    ["audit", "why", "--env", "prod"],
    ["audit", "tail"],
    ["audit", "verify"],
    ["keys", "list"],
]
# numpy too: none of these computes anything (it cost ~70 ms of every query before)
QUERY_HEAVY = {*HEAVY, "numpy"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str]]:
    return demo_home(tmp_path_factory.mktemp("demo"))


@pytest.mark.parametrize("args", QUERIES, ids=" ".join)
def test_queries_import_no_heavy_library(
    demo: tuple[dict[str, Any], dict[str, str]], args: list[str], tmp_path: Path
) -> None:
    _, env = demo
    listing = tmp_path / "modules"
    out = subprocess.run(
        [sys.executable, "-c", LISTING_KEEL, str(listing), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    names = set(listing.read_text().split())
    loaded = names | {n.split(".")[0] for n in names}
    assert not QUERY_HEAVY & loaded, f"keel {' '.join(args)} imported {QUERY_HEAVY & loaded}"
    assert out.stdout.strip()


def test_the_lazy_cli_answers_a_query(demo: tuple[dict[str, Any], dict[str, str]]) -> None:
    _, env = demo
    keel = str(Path(sys.executable).with_name("keel"))
    out = subprocess.run(
        [keel, "audit", "serving", "--env", "prod", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert (doc["family"], doc["env"]) == ("breast_cancer", "prod")
    assert len(doc["serving"]["model_id"]) == 64
