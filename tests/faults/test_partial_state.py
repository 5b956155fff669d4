"""A command that fails halfway leaves nothing half-recorded, or its rerun completes it; and it
fails with a clear error, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from keel_services.entrypoints.demo.story import write_csv
from tests.integration.test_ingest_boundary import good_rows, ingest_json, keel, project

pytestmark = pytest.mark.faults
__all__ = ["project"]


def recorded_ids() -> list[str]:
    code, out = keel("audit", "tail", "--topic", "artifacts", "--json")
    assert code == 0, out
    return [json.loads(line)["artifact_id"] for line in out.splitlines()]


def log_size(project: Path) -> int:
    with sqlite3.connect(project / "wd" / "home" / "log.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])


def test_a_put_blocked_by_a_locked_log_is_completed_by_its_rerun(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_json(write_csv(project / "first.csv", good_rows()[:3]))  # the home and its log
    monkeypatch.setenv("KEEL_LOCK_TIMEOUT", "0.5")
    f = project / "prompt.txt"
    f.write_text("You are a careful assistant.\n")
    holder = sqlite3.connect(project / "wd" / "home" / "log.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the log
    try:
        code, out = keel("artifacts", "put", str(f), "--kind", "prompt_template", "--json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "locked by another writer" in out and "Traceback" not in out, out
    code, out = keel("artifacts", "put", str(f), "--kind", "prompt_template", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["created"] is False  # the bytes were stored by the first run...
    assert recorded_ids().count(doc["id"]) == 1  # ...and the rerun recorded them, once
    code, out = keel("artifacts", "put", str(f), "--kind", "prompt_template", "--json")
    assert code == 0 and recorded_ids().count(doc["id"]) == 1  # no duplicates after that


def test_retrain_on_an_artifact_that_is_not_a_dataset_records_nothing(project: Path) -> None:
    ingest_json(write_csv(project / "first.csv", good_rows()[:30]))
    f = project / "model.pkl"
    f.write_bytes(b"\x80\x04not really a model")
    code, out = keel("artifacts", "put", str(f), "--kind", "model", "--json")
    assert code == 0, out
    model_id = json.loads(out)["id"]
    before = log_size(project)
    code, out = keel("retrain", "--family", "breast_cancer", "--eval-dataset", model_id[:12])
    assert code == 2 and "is a model, not a dataset ingested for breast_cancer" in out, out
    assert "Traceback" not in out and log_size(project) == before


def test_a_file_deleted_while_being_stored_is_a_clear_error(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel_services.entrypoints.cli import artifacts_cmd

    ingest_json(write_csv(project / "first.csv", good_rows()[:3]))
    f = project / "vanishing.bin"
    f.write_bytes(b"x" * 1000)

    digest_of = artifacts_cmd._digest_of_regular_file

    def digest_then_vanish(path: Path) -> str:
        out = digest_of(path)
        path.unlink()  # the file goes away between its digest and its copy
        return out

    monkeypatch.setattr(artifacts_cmd, "_digest_of_regular_file", digest_then_vanish)
    before = log_size(project)
    code, out = keel("artifacts", "put", str(f), "--kind", "blob")
    assert code == 2 and "cannot read" in out and "Traceback" not in out, out
    assert log_size(project) == before


def test_absurdly_nested_param_json_is_refused(project: Path) -> None:
    f = project / "p.txt"
    f.write_text("x")
    deep = "[" * 10_000 + "]" * 10_000
    for value in (deep, "[" * 40 + "]" * 40):
        code, out = keel("artifacts", "put", str(f), "--kind", "blob", "--param", f"cfg={value}")
        assert code == 2 and "nested deeper than" in out and "Traceback" not in out, out[:300]
    code, out = keel("artifacts", "put", str(f), "--kind", "blob", "--param", 'cfg={"a": [1]}')
    assert code == 0, out
