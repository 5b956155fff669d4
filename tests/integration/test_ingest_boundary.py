"""Ingest on the embedded default: bad files and records give clear errors or quarantine
entries, never a traceback; records in = accepted + quarantined; nothing earlier is lost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keel_services.entrypoints.cli.main import app
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir, write_csv

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home, project_file = prepare_workdir(tmp_path / "wd")
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.setenv("KEEL_PROJECT", str(project_file))
    monkeypatch.setenv("KEEL_KEYS_DIR", str(project_file.with_name("keys")))
    return tmp_path


def keel(*args: str) -> tuple[int, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout + r.stderr


def ingest_json(path: Path, family: str = "breast_cancer") -> dict[str, Any]:
    code, out = keel("ingest", str(path), "--family", family, "--at", "2026-02-01", "--json")
    assert code == 0, out
    doc: dict[str, Any] = json.JSONDecoder().raw_decode(out[out.index("{") :])[0]
    return doc


def good_rows() -> list[dict[str, Any]]:
    return monthly_batches()[1][0]


def test_csv_counts_add_up_and_reasons_are_recorded(project: Path) -> None:
    rows = good_rows()
    bad = [{**rows[0], "mean_radius": "abc"}, {**rows[1], "malignant": 5}]
    doc = ingest_json(write_csv(project / "m.csv", rows + bad))
    assert (doc["records_in"], doc["accepted"], doc["quarantined"]) == (len(rows) + 2, len(rows), 2)
    _, out = keel("audit", "tail", "--topic", "quarantine", "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["field"], e["rule"]) for e in events] == [
        ("mean_radius", "type.double"),
        ("malignant", "enum"),
    ]
    assert all(e["quarantine_batch_id"] == doc["quarantine_batch_id"] for e in events)


def test_jsonl_with_junk_lines_quarantines_them(project: Path) -> None:
    rows = good_rows()[:5]
    p = project / "m.jsonl"
    lines = [json.dumps(r) for r in rows] + [
        "{not json",
        "[1, 2]",
        "[" * 50_000,
        json.dumps({**rows[0], "extra": 1}),
    ]
    p.write_text("\n".join(lines) + "\n")
    doc = ingest_json(p)
    assert (doc["records_in"], doc["accepted"], doc["quarantined"]) == (9, 5, 4)


def test_ten_megabyte_line_is_quarantined_not_parsed(project: Path) -> None:
    rows = good_rows()[:3]
    p = project / "big.jsonl"
    p.write_text(
        "\n".join([json.dumps(r) for r in rows] + ['{"x": "' + "a" * 10_000_000 + '"}']) + "\n"
    )
    doc = ingest_json(p)
    assert (doc["accepted"], doc["quarantined"]) == (3, 1)
    _, out = keel("audit", "tail", "--topic", "quarantine", "--json")
    assert json.loads(out.splitlines()[-1])["rule"] == "format.line_too_long"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "is empty"),
        (b"\x00\xff\xfe binary \x89PNG", "junk.csv", "a binary file, not CSV"),
        (b"\xff\xfe\xfa,b\n1,2\n", "latin.csv", "header line is unreadable"),
        (b"a,b\n1,2\n", "data.xlsx", "unknown format"),
    ],
)
def test_unusable_files_are_one_clear_error(
    project: Path, content: bytes, name: str, message: str
) -> None:
    before = ingest_json(write_csv(project / "first.csv", good_rows()[:4]))
    p = project / name
    p.write_bytes(content)
    code, out = keel("ingest", str(p), "--family", "breast_cancer")
    assert code == 2 and message in out and "Traceback" not in out
    code, out = keel("artifacts", "verify", before["dataset_id"][:12])
    assert code == 0  # nothing accepted earlier is lost


def test_wrong_columns_are_quarantined(project: Path) -> None:
    p = project / "cols.csv"
    p.write_text("record_id,colour\nx,red\n")
    doc = ingest_json(p)
    assert (doc["accepted"], doc["quarantined"]) == (0, 1)


def test_unknown_family_and_bad_project(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = write_csv(project / "m.csv", good_rows()[:2])
    code, out = keel("ingest", str(p), "--family", "nope")
    assert code == 2 and "unknown family 'nope'" in out and "breast_cancer" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[families.f.promotion.prod]\ngates = "none"\n[families.f]\nenvironments = ["prod"]\n'
        'training_contract = "t.avsc"\ninference_contract = "i.avsc"\ntransform = "m:f"\n'
    )
    monkeypatch.setenv("KEEL_PROJECT", str(bad))
    code, out = keel("ingest", str(p), "--family", "f")
    assert code == 2 and "families.f.trainer" in out
    bad.write_text(bad.read_text() + 'trainer = "no_such_module_xyz:train"\n')
    code, out = keel("ingest", str(p), "--family", "f")
    assert code == 2 and "t.avsc does not exist" in out


def test_missing_trainer_entry_point_is_explained(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = Path(str(project / "wd" / "keel.toml"))
    toml.write_text(
        toml.read_text().replace(
            "keel_services.entrypoints.demo.plugins:train",
            "keel_services.entrypoints.demo.plugins:no_such_trainer",
        )
    )
    first = ingest_json(write_csv(project / "a.csv", good_rows()[:30]))
    holdout = ingest_json(write_csv(project / "h.csv", monthly_batches()[0][:40]))
    code, out = keel(
        "retrain",
        "--family",
        "breast_cancer",
        "--eval-dataset",
        holdout["dataset_id"],
        "--dataset",
        first["dataset_id"],
    )
    assert code == 2 and "has no callable 'no_such_trainer'" in out


def test_bad_time_is_a_clear_error(project: Path) -> None:
    p = write_csv(project / "m.csv", good_rows()[:2])
    code, out = keel("ingest", str(p), "--family", "breast_cancer", "--at", "last tuesday")
    assert code == 2 and "not an ISO 8601 time" in out
