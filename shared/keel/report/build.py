"""One review pack from an open runtime: verify everything (one log scan, which also yields the
leaves for the proofs and the reconciliation verdicts), gather the document from the views,
prove each listed event against the latest checkpoint, render, sign. Nothing is recorded: the
same log, period and options give the same body."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit.verify_run import checkpoints, verify_scan
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.extras import need
from keel.report import content, evidence, render
from keel.views.port import ViewStore


@dataclass(frozen=True)
class Report:
    html: str
    document: dict[str, Any]  # what the report says, verification and evidence included
    ok: bool  # verification passed and every listed event has a valid proof
    signed_by: str | None
    # signs a statement (the PDF's): None when the project declares no keys
    sign: Callable[[str], str] | None = None

    def pdf(self, now: datetime | None = None) -> bytes:
        """Printed by Chromium, the HTML attached, and sealed: the PDF's own bytes are signed,
        so its visible pages cannot say something else than what was signed."""
        data = render.pdf(self.html)
        if self.sign is None:
            return data
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        body = render.body_of(self.html)
        note = self.sign(evidence.pdf_statement(self.document["report"], body, data, when))
        return render.seal_pdf(data, note)

    def write(self, path: Path) -> None:
        """FILE.html or FILE.pdf, by its suffix; never through a symlink, and whole or not at
        all (a temporary file beside it, then renamed over it)."""
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            data = self.html.encode("utf-8")
        elif suffix == ".pdf":
            data = self.pdf()
        else:
            raise KeelError(
                f"{path}: a report is written as .html or .pdf, not {suffix or 'no suffix'}",
                hint="name the file FILE.html or FILE.pdf",
            )
        write_new(path, data)


def write_new(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically. A symlink there is refused: following it would
    overwrite whatever file it points to (another user's, or the log itself)."""
    if path.is_symlink():
        raise KeelError(
            f"{path} is a symlink (to {os.readlink(path)}); a report is not written through one",
            hint="give the path of a plain file, or remove the link first",
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as a plain open() would (mkstemp makes it 0600)
        os.replace(tmp, path)  # a rename replaces a symlink created meanwhile, never follows it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build(
    rt: Runtime,
    views: ViewStore,
    family: str,
    envs: Sequence[str],
    start: datetime,
    end: datetime,
    identity: str,
    witnesses: Sequence[Path] = (),
    skip: Sequence[str] = (),
    now: datetime | None = None,
) -> Report:
    """`views` must be at the log's end (the caller folds first)."""
    need("report", "jinja2", "matplotlib")  # said before the verification, not after it
    if rt.trust.enabled:  # before the work: a pack this identity may not sign is refused now
        evidence.may_sign(rt.trust, identity)
    kept: list[Any] = []
    newest: list[datetime] = []

    def keep(event: Any) -> None:
        # The newest time the log knows bounds "still serving": from the log, not the clock,
        # so the same log gives the same body whenever it is rendered.
        at = event.envelope.occurred_at
        if not newest or at > newest[0]:
            newest[:] = [at]
        if event.EVENT_TYPE in content.RECONCILIATION and event.family == family:
            kept.append(event)

    verification, scan = verify_scan(rt, witnesses, skip, keep)
    as_of = newest[0] if newest else start
    doc = content.gather(views, rt.artifacts.read_bytes, family, envs, start, end, kept, as_of)
    latest = None
    for _, event in checkpoints(rt):
        latest = event
    notes = [t.note for t in latest.trees] if latest is not None else []
    proved = evidence.proofs(content.listed_events(doc), scan, notes)
    proved["audit_keys"] = evidence.public_keys(rt.trust, cp.AUDIT_IDENTITY)
    proved["report_keys"] = evidence.public_keys(rt.trust, identity)
    proved["report_signers"] = sorted(rt.trust.report_signers)
    page = render.body(doc, verification, proved, identity, len(witnesses))
    note = None
    sign = None
    if rt.trust.enabled:
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        note = cp.sign(evidence.statement(doc, render.body_of(page), when), rt.signer, identity)

        def sign(text: str) -> str:
            return evidence.sign(text, rt.signer, identity)

    ok = verification["ok"] and all(not p["problem"] for p in proved["proofs"])
    return Report(
        html=render.signed_html(page, note),
        document={"report": doc, "verification": verification, "evidence": proved},
        ok=ok,
        signed_by=identity if note else None,
        sign=sign,
    )
