"""Rollback is a deployment like any other: recorded, with a manifest, answerable later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def test_rollback_to_the_previous_prod_model_and_to_a_named_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    demo = json.loads(out.stdout)
    env.update(KEEL_HOME=demo["home"], KEEL_PROJECT=demo["project"], KEEL_KEYS_DIR=demo["keys_dir"])
    prod = [d["model_id"] for d in demo["deployments"] if d["env"] == "prod"]

    def keel(*args: str) -> tuple[int, Any]:
        r = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)
        if r.returncode != 0:
            return r.returncode, r.stderr
        return 0, json.loads(r.stdout) if "--json" in args else r.stdout

    code, doc = keel(
        "deploy",
        "rollback",
        "--family",
        "breast_cancer",
        "--env",
        "prod",
        "--at",
        "2026-01-10",
        "--json",
    )
    assert code == 0 and doc["model_id"] == prod[-2] and doc["previous_model_id"] == prod[-1]
    code, doc = keel(
        "deploy",
        "rollback",
        "--family",
        "breast_cancer",
        "--env",
        "prod",
        "--to",
        prod[0][:10],
        "--at",
        "2026-01-11",
        "--json",
    )
    assert code == 0 and doc["model_id"] == prod[0]
    code, err = keel(
        "deploy", "rollback", "--family", "breast_cancer", "--env", "prod", "--to", "ffffffffff"
    )
    assert code == 2 and "never served here" in err
    code, tail = keel("audit", "tail", "--topic", "deployments")
    assert code == 0
    assert tail.count("(rollback;") == 2


def test_parquet_files_are_ingested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir

    home, project = prepare_workdir(tmp_path / "wd")
    rows = monthly_batches()[1][0][:20]
    rows[3] = {**rows[3], "mean_area": -5.0}
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "batch.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(home), KEEL_PROJECT=str(project), KEEL_KEYS_DIR=str(project.with_name("keys"))
    )
    r = subprocess.run(
        [KEEL, "ingest", str(tmp_path / "batch.parquet"), "--family", "breast_cancer", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["records_in"], doc["accepted"], doc["quarantined"]) == (20, 19, 1)
