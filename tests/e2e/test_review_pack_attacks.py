"""A review pack nobody can dress up (issue 33, item 6), on a `keel demo` home; the attacker can
write files but holds no private key, or holds one service key (serve's):

(a) a <script> or <style> added after the signed body marker (or inside the signature section)
    is refused: the file must be the body and exactly the signature section after it;
(b) a PDF whose pages say something else, with the genuine HTML attached, is refused: a PDF pack
    is sealed (its own bytes signed) and its page text must equal the signed HTML's;
(c) a body re-signed with the serve key is refused by the checker, and `keel audit report` will
    not sign as serve: only identities with the report-signing role sign packs;
(d) a recorded field named like the body marker (file and HTTP ingest; Kafka + Redis too)
    cannot cut the signed body: the marker occurs once, and the pack checks."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import demo_home

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tools" / "check_report.py"
YEAR = ["--from", "2025-01-01T00:00:00Z", "--to", "2026-01-01T00:00:00Z"]
END = "<!--/keel-report-body-->"


def keel(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=600)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def check(report: Path, keys: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(report), "--keys", str(keys)],
        capture_output=True,
        text=True,
        timeout=120,
    )


class Demo:
    def __init__(self, demo: dict[str, Any], env: dict[str, str], work: Path) -> None:
        self.demo, self.env, self.work = demo, env, work
        self.keys = Path(demo["project"]).with_name("keys.toml")

    def signer(self) -> Any:
        """The demo's private keys, as an attacker who stole them (or a signer) would hold."""
        from keel.signing import Signer, load_private, load_trust

        trust = load_trust(self.keys, Path(self.demo["project"]))
        return Signer(trust, load_private(Path(self.demo["keys_dir"])))


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Demo, Path, Path]:
    """One demo home, its genuine HTML pack of the year and PDF pack of prod."""
    work = tmp_path_factory.mktemp("dressed")
    d = Demo(*demo_home(work / "demo"), work)
    html, pdf = work / "year.html", work / "prod.pdf"
    keel(d.env, "audit", "report", *YEAR, "--out", str(html))
    keel(d.env, "audit", "report", *YEAR, "--env", "prod", "--out", str(pdf))
    return d, html, pdf


def test_the_genuine_packs_check(pack: Any) -> None:
    d, html, pdf = pack
    for f in (html, pdf):
        done = check(f, d.keys)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "signed by keel-audit-" in done.stdout
    assert html.read_text(encoding="utf-8").count(END) == 1


DRESSINGS = {
    # rewrites what the reader sees after the signed body has been read
    "script appended": lambda p: p.replace(
        "</body>",
        "<script>document.querySelectorAll('.rejected').forEach(e => "
        "e.textContent = 'PROMOTED')</script></body>",
    ),
    "style hiding rows": lambda p: p.replace(
        "</section>\n</body>",
        "<style>.rejected, .fail { display: none }</style></section>\n</body>",
    ),
    "script inside the note": lambda p: p.replace(
        "</pre></section>", "<script>document.title = 'x'</script></pre></section>"
    ),
    "bytes after the html end": lambda p: p + "<style>tr:nth-child(3) { display: none }</style>\n",
}


@pytest.mark.parametrize("how", list(DRESSINGS))
def test_a_script_or_style_after_the_signed_body_is_refused(pack: Any, how: str) -> None:
    d, html, _ = pack
    dressed = d.work / f"dressed-{how.replace(' ', '-')}.html"
    page = html.read_text(encoding="utf-8")
    dressed.write_text(DRESSINGS[how](page), encoding="utf-8")
    assert dressed.read_text(encoding="utf-8") != page
    done = check(dressed, d.keys)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "something other than the signature follows the signed body" in done.stdout
    assert "OK: every check passed" not in done.stdout


def _pages_with(pages_pdf: bytes, attached: bytes) -> bytes:
    """A PDF made of `pages_pdf`'s pages with `attached` as its keel-report.html."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(pages_pdf)).pages:
        writer.add_page(page)
    writer.add_attachment("keel-report.html", attached)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _attached(pdf: bytes) -> bytes:
    from pypdf import PdfReader

    return bytes(PdfReader(io.BytesIO(pdf)).attachments["keel-report.html"][0])


def test_a_pdf_whose_pages_say_something_else_is_refused(pack: Any) -> None:
    from keel.report import evidence, render

    d, _, pdf = pack
    genuine = pdf.read_bytes()
    html = _attached(genuine)
    # pages printed from a dressed-up copy (a rejection reads as a promotion), genuine HTML
    lie = render.pdf(html.decode("utf-8").replace("REJECTED", "PROMOTED"))
    forged = _pages_with(lie, html)
    seal = genuine[genuine.rindex(b"\n%keel-report-signature ") + 1 :]
    cases = {
        "unsealed": (forged, "the PDF is not sealed"),
        "the genuine seal copied": (forged + seal, "do not match its signed digest"),
    }
    # a signer with the role sealing pages that differ from the HTML: the text comparison
    body = render.body_of(html.decode("utf-8"))
    doc = json.loads(html.decode("utf-8").split('id="keel-evidence">')[1].split("</script>")[0])[
        "report"
    ]
    note = evidence.sign(
        evidence.pdf_statement(doc, body, forged, datetime.now(UTC).replace(microsecond=0)),
        d.signer(),
        "audit",
    )
    cases["sealed by the audit key"] = (
        render.seal_pdf(forged, note),
        "the PDF's pages do not show the signed HTML",
    )
    for name, (data, why) in cases.items():
        out = d.work / f"forged-{name.replace(' ', '-')}.pdf"
        out.write_bytes(data)
        done = check(out, d.keys)
        assert done.returncode == 1, (name, done.stdout + done.stderr)
        assert why in done.stdout, (name, done.stdout)
    assert "the pages read 'PROMOTED" in done.stdout  # the last case names what differs


def test_a_pack_re_signed_with_the_serve_key_is_refused(pack: Any) -> None:
    from keel.audit import checkpoint as cp
    from keel.report import evidence, render

    d, html, _ = pack
    page = html.read_text(encoding="utf-8")
    body = render.body_of(page).replace("REJECTED", "PROMOTED")
    doc = json.loads(page.split('id="keel-evidence">')[1].split("</script>")[0])["report"]
    at = datetime.now(UTC).replace(microsecond=0)
    # the serve key is valid in keys.toml: only the role stops it
    note = cp.sign(evidence.statement(doc, body, at), d.signer(), "serve")
    resigned = d.work / "resigned.html"
    resigned.write_text(body + render.SIG_HEAD + note + render.SIG_TAIL, encoding="utf-8")
    done = check(resigned, d.keys)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "signed by keel-serve-" in done.stdout
    assert "'serve' may not sign review packs (allowed: audit)" in done.stdout
    # and Keel itself will not sign a pack as serve
    done = keel(
        {**d.env, "KEEL_IDENTITY": "serve"},
        "audit",
        "report",
        *YEAR,
        "--out",
        str(d.work / "serve.html"),
        ok=False,
    )
    assert done.returncode != 0
    assert "identity 'serve' may not sign review packs" in done.stdout + done.stderr
    assert "sign_reports = true" in done.stdout + done.stderr
    assert not (d.work / "serve.html").exists()


def _copy(d: Demo, to: Path) -> Demo:
    src = Path(d.demo["workdir"])
    shutil.copytree(src, to, symlinks=True)
    demo = {k: v.replace(str(src), str(to)) if isinstance(v, str) else v for k, v in d.demo.items()}
    env = {
        **d.env,
        "KEEL_HOME": demo["home"],
        "KEEL_PROJECT": demo["project"],
        "KEEL_KEYS_DIR": demo["keys_dir"],
    }
    return Demo(demo, env, to)


def marker_records(demo: dict[str, Any]) -> bytes:
    """Three demo records, each with an unknown field named like the body marker."""
    import csv

    with open(Path(demo["workdir"]) / "incoming" / "2025-01.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:3]
    lines = []
    for row in rows:
        rec: dict[str, Any] = {
            k: v if k == "record_id" else int(v) if k == "malignant" else float(v)
            for k, v in row.items()
        }
        rec[END] = "</script><script>document.body.hidden = true</script>"
        lines.append(json.dumps(rec))
    return ("\n".join(lines) + "\n").encode()


def _http_ingest(env: dict[str, str], body: bytes) -> None:
    import httpx

    from tests.e2e.test_http_services import free_port, wait_up

    port = free_port()
    proc = subprocess.Popen(
        [KEEL, "service", "run", "ingest", "--port", str(port)],
        env={**env, "KEEL_API_TOKEN": "t0k"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_up(url, proc)
        r = httpx.post(
            f"{url}/v1/families/breast_cancer/records",
            content=body,
            headers={"Authorization": "Bearer t0k", "Content-Type": "application/x-ndjson"},
            params={"at": "2025-06-15T00:00:00Z"},
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.json()["quarantined"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def assert_marker_cannot_cut(d: Demo, how: str) -> None:
    body = marker_records(d.demo)
    if how == "file":
        f = d.work / "marker.jsonl"
        f.write_bytes(body)
        done = keel(
            d.env, "ingest", str(f), "--family", "breast_cancer", "--at", "2025-06-15", "--json"
        )
        assert json.loads(done.stdout)["quarantined"] == 3
    else:
        _http_ingest(d.env, body)
    keel(d.env, "audit", "project")  # the new events under a checkpoint (Kafka: not yet)
    out = d.work / "marked.html"
    made = keel(d.env, "audit", "report", *YEAR, "--out", str(out), "--json", ok=False)
    doc = json.loads(made.stdout)
    unproven = [p for p in doc["evidence"]["proofs"] if p["problem"]]
    assert made.returncode == 0 and doc["ok"], (doc["verification"].get("problems"), unproven)
    page = out.read_text(encoding="utf-8")
    # before: the record's field name cut the signed body inside the evidence JSON
    assert page.count(END) == 1 and page.index(END) > page.index('id="keel-evidence"')
    assert "unknown_field on &lt;!--/keel-report-body--&gt;" in page  # the reader sees it
    done = check(out, d.keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: every check passed" in done.stdout
    assert doc["signed_by"] == "audit"


@pytest.mark.parametrize("how", ["file", "http"])
def test_a_recorded_marker_cannot_cut_the_signed_body(pack: Any, tmp_path: Path, how: str) -> None:
    d, _, _ = pack
    assert_marker_cannot_cut(_copy(d, tmp_path / "w"), how)


def test_a_recorded_marker_cannot_cut_the_signed_body_on_kafka_and_redis(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from keel.log.kafka import new_prefix

    prefix = new_prefix()
    views = redis_url.rsplit("/", 1)[0] + "/5?namespace=" + prefix.replace(".", ":")
    demo, env = demo_home(tmp_path / "k", f"kafka://{kafka_bootstrap}?prefix={prefix}", views)
    assert_marker_cannot_cut(Demo(demo, env, tmp_path), "file")


def test_the_dozen_line_checker_of_the_docs_checks_a_pack(pack: Any) -> None:
    """docs/review-pack-checker.md's minimal checker (SHA-256 and Ed25519 only) accepts the
    genuine pack with the audit key and refuses the dressed one."""
    d, html, _ = pack
    doc = (ROOT / "docs" / "review-pack-checker.md").read_text(encoding="utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 16
    script = d.work / "minimal_check.py"
    script.write_text(code, encoding="utf-8")
    audit = d.signer().trust.active_key("audit")
    key = base64.b64encode(audit.public).decode()
    run = lambda f: subprocess.run(  # noqa: E731
        [sys.executable, str(script), str(f), f"keel-audit-{audit.id}", key],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    done = run(html)
    assert done.returncode == 0 and "OK" in done.stdout, done.stdout + done.stderr
    dressed = d.work / "dressed-script-appended.html"
    dressed.write_text(
        DRESSINGS["script appended"](html.read_text(encoding="utf-8")), encoding="utf-8"
    )
    assert run(dressed).returncode != 0
