"""Files as real exports arrive: RFC 4180 quoting, BOMs, upper-case suffixes, JSON arrays, old
line endings, duplicated columns and unreadable files (which must leave nothing behind)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_ingest_boundary import good_rows, ingest_json, keel, project

pytestmark = pytest.mark.integration
__all__ = ["project"]  # the fixture, shared with the boundary tests
BOM = b"\xef\xbb\xbf"


def csv_text(rows: list[dict[str, Any]], newline: str = "\r\n") -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator=newline)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def artifacts_recorded(project: Path) -> int:
    """ArtifactRecorded events so far (after one good ingest, so the home exists)."""
    if not (project / "wd" / "home").exists():
        ingest_json(_write(project / "first.csv", csv_text(good_rows()[:3]).encode()))
    code, out = keel("audit", "tail", "--topic", "artifacts", "--json")
    assert code == 0, out
    return len(out.splitlines())


def counts(doc: dict[str, Any]) -> tuple[int, int, int]:
    return doc["records_in"], doc["accepted"], doc["quarantined"]


def test_a_quoted_field_holding_a_line_break_is_one_record(project: Path) -> None:
    rows = good_rows()[:6]
    rows[2] = {**rows[2], "record_id": 'line one\nline "two", still one field'}
    p = project / "quoted.csv"
    p.write_text(csv_text(rows), newline="")
    assert counts(ingest_json(p)) == (6, 6, 0)


def test_a_duplicated_header_column_rejects_the_file_and_stores_nothing(project: Path) -> None:
    before = artifacts_recorded(project)
    rows = good_rows()[:4]
    text = csv_text(rows)
    header, rest = text.split("\r\n", 1)
    p = project / "dupe.csv"
    p.write_text(header + ",mean_radius\r\n" + rest.replace("\r\n", ",999\r\n"), newline="")
    code, out = keel("ingest", str(p), "--family", "breast_cancer")
    assert code == 2 and "'mean_radius' more than once" in out, out
    assert artifacts_recorded(project) == before


@pytest.mark.parametrize("kind", ["csv_bom", "jsonl_bom", "upper_csv", "json_array", "cr_only"])
def test_common_export_shapes_are_read_as_meant(project: Path, kind: str) -> None:
    rows = good_rows()[:7]
    lines = "\n".join(json.dumps(r) for r in rows) + "\n"
    name, data = {
        "csv_bom": ("bom.csv", BOM + csv_text(rows).encode()),
        "jsonl_bom": ("bom.jsonl", BOM + lines.encode()),
        "upper_csv": ("UPPER.CSV", csv_text(rows).encode()),
        "json_array": ("array.json", BOM + json.dumps(rows, indent=2).encode()),
        "cr_only": ("mac.csv", csv_text(rows, newline="\r").encode()),
    }[kind]
    p = project / name
    p.write_bytes(data)
    assert counts(ingest_json(p)) == (7, 7, 0)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("binary.csv", bytes(range(256)) * 64),
        ("late.csv", b"record_id,mean_radius\n" + b"x,1\n" * 10 + b'"unclosed,2\n' * 3),
        ("junk.parquet", b"PAR1 this is not parquet at all"),
        ("bad.json", b"[{" + b'"a": 1,' * 10),
    ],
)
def test_an_unreadable_file_leaves_no_artifact_behind(
    project: Path, name: str, content: bytes
) -> None:
    before = artifacts_recorded(project)
    p = project / name
    p.write_bytes(content)
    code, out = keel("ingest", str(p), "--family", "breast_cancer", "--json")
    if name == "late.csv":  # a broken quote late in the file is one quarantined record
        assert code == 0, out
        return
    assert code == 2 and "Traceback" not in out, out
    assert artifacts_recorded(project) == before, (
        "a raw batch was stored without its DatasetIngested"
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
