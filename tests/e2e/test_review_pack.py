"""The quarterly review pack (`keel audit report`) on the demo year: what it says, that its PDF
reads back as pages and text, that its proofs check with tools/check_report.py (which imports
nothing from Keel), that it is deterministic, and that one edited byte of the log turns it into
a report of failed verification."""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import demo_home

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tools" / "check_report.py"
YEAR = ["--from", "2025-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"]


def keel(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=600)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def check(report: Path, keys: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(report), "--keys", keys],
        capture_output=True,
        text=True,
        timeout=120,
    )


def body(page: str) -> str:
    return page[: page.index("<!--/keel-report-body-->")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, str], Path]:
    work = tmp_path_factory.mktemp("pack")
    d, env = demo_home(work / "demo")
    return d, env, work


def rejections(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in d["promotions"] if p["decision"] == "rejected"]


def test_the_pack_for_the_demo_year_names_the_story(demo: Any) -> None:
    d, env, work = demo
    out = work / "year.html"
    done = keel(env, "audit", "report", *YEAR, "--out", str(out), "--json")
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["verification"]["ok"]
    page = out.read_text(encoding="utf-8")
    july = d["answers"]["serving_prod_at"]["serving"]["model_id"]
    assert july[:16] in page
    prod = doc["report"]["timeline"]["prod"]
    assert any(
        iv["model_id"] == july and iv["since"] <= "2025-07-01" < (iv["until"] or "9") for iv in prod
    )
    # both prod rejections, with the margin of the gate that failed
    rejected = [x for x in doc["report"]["decisions"] if x["decision"] == "rejected"]
    assert sorted(x["model_id"] for x in rejected) == sorted(p["model_id"] for p in rejections(d))
    for x in rejected:
        failed = [g for g in x["gates"] if not g["passed"]]
        assert failed and all(g["margin"] is not None for g in failed)
        assert f"{failed[0]['margin']:+.4f}" in page
        assert x["event_id"] in page
    # the quarantined March records, with their reasons
    march = next(ds for ds in doc["report"]["datasets"] if ds["period"] == "2025-03")
    assert march["quarantined"] == d["quarantined"] == 4
    assert {r["rule"] for r in march["reasons"]} == {"type.double", "range.min", "not_null", "enum"}
    assert "mean_area: -12.5 is below the minimum 0.0" in page
    # every listed event has a proof that leads to the checkpoint
    proofs = doc["evidence"]["proofs"]
    assert proofs and all(p["problem"] is None for p in proofs)
    assert {x["event_id"] for x in rejected} <= {p["event_id"] for p in proofs}
    assert "Verification passed" in page and 'id="keel-signature"' in page


def test_the_pdf_reads_back_as_pages_and_text(demo: Any) -> None:
    d, env, work = demo
    pdf = work / "year.pdf"
    keel(env, "audit", "report", *YEAR, "--env", "prod", "--out", str(pdf))
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(work / "page")], check=True)
    pages = sorted(work.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 5_000 for p in pages)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Review pack: breast_cancer" in text and "Verification passed" in text
    assert "REJECTED" in text and "beats_incumbent" in text
    assert "2025-03" in text and "range.min on mean_area" in text
    # the attached HTML carries the evidence: the checker takes the PDF as it is
    done = check(pdf, str(Path(d["project"]).with_name("keys.toml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_proofs_check_without_keel(demo: Any) -> None:
    d, env, work = demo
    out = work / "check.html"
    keel(env, "audit", "report", *YEAR, "--out", str(out))
    keys = str(Path(d["project"]).with_name("keys.toml"))
    done = check(out, keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report signed by keel-audit-" in done.stdout
    # an edit anywhere in the signed part is caught
    page = out.read_text(encoding="utf-8")
    edited = work / "edited.html"
    edited.write_text(page.replace("REJECTED", "PROMOTED", 1), encoding="utf-8")
    done = check(edited, keys)
    assert done.returncode == 1 and "does not match its signed digest" in done.stdout


def test_the_python_client_writes_the_same_pack(demo: Any) -> None:
    from keel.client import Client
    from keel.errors import KeelError
    from tests.demo_home import demo_settings

    d, _, work = demo
    with Client(demo_settings(d)) as k:
        pack = k.report("breast_cancer", "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "prod")
        assert pack.ok and pack.signed_by == "audit"
        data = pack.pdf()
    assert data.startswith(b"%PDF")
    with pytest.raises(KeelError, match=r"as \.html or \.pdf"):
        pack.write(work / "pack.txt")


def test_the_checker_imports_nothing_from_keel() -> None:
    tree = ast.parse(CHECKER.read_text(encoding="utf-8"))
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert imported and not {m for m in imported if m.split(".")[0] in ("keel", "keel_services")}


def test_the_same_log_gives_the_same_report(demo: Any) -> None:
    _, env, work = demo
    a, b = work / "a.html", work / "b.html"
    keel(env, "audit", "report", *YEAR, "--out", str(a))
    keel(env, "audit", "report", *YEAR, "--out", str(b))
    assert body(a.read_text(encoding="utf-8")) == body(b.read_text(encoding="utf-8"))


def test_one_edited_byte_of_the_log_makes_the_report_say_verification_failed(
    tmp_path: Path,
) -> None:
    d, env = demo_home(tmp_path / "demo")
    rejected = rejections(d)[0]["model_id"]
    with sqlite3.connect(Path(d["home"]) / "log.db") as db:
        seq, value = db.execute(
            "SELECT seq, value FROM events WHERE topic = 'registry' AND instr(value, ?) > 0",
            (rejected.encode(),),
        ).fetchone()
        i = value.index(rejected.encode()) + 5  # one hex digit of the model ID in the event
        flipped = value[:i] + bytes([value[i] ^ 0x01]) + value[i + 1 :]
        db.execute("UPDATE events SET value = ? WHERE seq = ?", (flipped, seq))
    out = tmp_path / "after.html"
    done = keel(env, "audit", "report", *YEAR, "--out", str(out), "--json", ok=False)
    assert done.returncode == 1, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert not doc["ok"] and not doc["verification"]["ok"]
    kinds = {p["kind"] for p in doc["verification"]["problems"]}
    assert "bad-signature" in kinds
    page = out.read_text(encoding="utf-8")
    assert "Verification FAILED" in page
    done = check(out, str(Path(d["project"]).with_name("keys.toml")))
    assert done.returncode == 1
    assert "verification of the log failed" in done.stdout
