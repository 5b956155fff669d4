"""The pack as one self-contained HTML file (Jinja2, inline SVG, no external resources), and as
PDF printed by Chromium from that HTML with the HTML attached (so the PDF carries its evidence).

The body (the file up to the end marker) is a pure function of the document, the verification
and the evidence; the signature after it covers the body's SHA-256 and the signing time. The
file is exactly body + SIG_HEAD + note + SIG_TAIL: a checker compares the bytes after the body
with that, so nothing unsigned (a script, a style) can ride along. The marker occurs once:
recorded text reaches the page escaped (HTML-escaped in the text, `<` as \\u003c in the JSON).
A PDF is sealed the same way: its bytes, then one PDF comment line holding its signed note."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from keel.errors import KeelError
from keel.extras import need
from keel.report import charts

END = "<!--/keel-report-body-->"
ATTACHMENT = "keel-report.html"
# What follows the body of a signed pack, byte for byte (the note goes between the two).
SIG_HEAD = '\n<pre id="keel-signature">'
SIG_TAIL = "</pre></section>\n</body>\n</html>\n"
UNSIGNED_TAIL = (
    '\n<p class="bad" id="keel-unsigned">Not signed: the project declares no keys (keys.toml), '
    "so nobody can attest this report.</p></section>\n</body>\n</html>\n"
)
# A sealed PDF ends with this PDF comment line: the prefix, base64 of the note, a newline.
PDF_SEAL = b"%keel-report-signature "
# JSON inside <script>: no "<" (so neither "</script>" nor the marker can form), no ">" or "&"
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def _signed(x: Any) -> str:
    return "-" if x is None else f"{x:+.4f}"


def body(
    doc: dict[str, Any],
    verification: dict[str, Any],
    evidence: dict[str, Any],
    identity: str,
    witnesses: int,
) -> str:
    """Everything the signature covers: the same inputs give the same string."""
    need("report", "jinja2")
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keel.report", "templates"),
        autoescape=True,
        keep_trailing_newline=True,
    )
    env.globals.update(num=_num, signed=_signed)
    proven = sum(1 for p in evidence["proofs"] if not p["problem"])
    page = env.get_template("report.html.j2").render(
        d=doc,
        v=verification,
        e=evidence,
        identity=identity,
        witnesses=witnesses,
        proven=proven,
        unproven=len(evidence["proofs"]) - proven,
        charts={"timeline": charts.timeline(doc), "metrics": charts.metrics(doc)},
        evidence_json=json.dumps(
            {"report": doc, "verification": verification, "evidence": evidence},
            sort_keys=True,
            separators=(",", ":"),
        ).translate(_JSON_ESCAPES),
    )
    if page.count(END) != 1 or not page.endswith(END + "\n"):
        # every | safe part is escaped, so this is a bug, never a reason to sign a cut body
        raise KeelError(
            "the rendered review pack holds its end-of-body marker more than once",
            hint="report it: recorded text reached the page unescaped",
        )
    return page


def signed_html(page: str, note: str | None) -> str:
    """The page with its signature section after the body (and nothing else)."""
    head = body_of(page)
    if note is None:
        return head + UNSIGNED_TAIL
    if any(c in note for c in "<>&"):
        raise KeelError(
            "a review pack's signed note cannot hold <, > or & (it is placed in the page as is)",
            hint="name families and environments with letters, digits, - and _",
        )
    return head + SIG_HEAD + note + SIG_TAIL


def body_of(page: str) -> str:
    """The signed part of a rendered page (what evidence.statement digests): everything from
    the first byte to the end marker, styles included (a changed style could hide a row)."""
    end = page.find(END)
    if end < 0:
        raise KeelError("not a Keel report: the end-of-body marker is missing")
    return page[: end + len(END)]


def seal_pdf(data: bytes, note: str) -> bytes:
    """The PDF's bytes, then one comment line with its signed note (which states their SHA-256).
    PDF readers skip a comment after %%EOF; a checker accepts nothing else after the bytes."""
    if not data.endswith(b"\n"):
        data += b"\n"
    return data + PDF_SEAL + base64.b64encode(note.encode("utf-8")) + b"\n"


def browser() -> str:
    from keel.settings import Settings

    found = Settings().chromium or next((p for b in BROWSERS if (p := shutil.which(b))), None)
    if not found:
        raise KeelError(
            "printing a PDF needs Chromium, and none was found",
            hint="install it (`apt-get install chromium`), set KEEL_CHROMIUM to its path, or "
            "write HTML (--out FILE.html)",
        )
    return found


def pdf(page: str, timeout: float = 120) -> bytes:
    """Chromium prints the HTML; the HTML itself is attached to the PDF (pypdf), so whoever
    holds the PDF can check the evidence with tools/check_report.py."""
    import io

    need("report", "pypdf")
    from pypdf import PdfReader, PdfWriter

    with tempfile.TemporaryDirectory(prefix="keel-report-") as d:
        src, out = Path(d) / "report.html", Path(d) / "report.pdf"
        src.write_text(page, encoding="utf-8")
        cmd = [
            browser(),
            "--headless",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(d) / 'profile'}",
            f"--print-to-pdf={out}",
            src.as_uri(),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise KeelError(f"Chromium did not print the PDF within {timeout:g} s") from None
        if not out.exists() or out.stat().st_size == 0:
            raise KeelError(
                f"Chromium did not print the PDF (exit {done.returncode})",
                hint=done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
            )
        writer = PdfWriter(clone_from=PdfReader(out))
    writer.add_attachment(ATTACHMENT, page.encode("utf-8"))
    writer.add_metadata({"/Title": "Keel review pack", "/Producer": "keel"})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
