"""One review pack from an open runtime: verify everything (one log scan, which also yields the
leaves for the proofs and the reconciliation verdicts), gather the document from the views,
prove each listed event against the latest checkpoint, render, sign. Nothing is recorded: the
same log, period and options give the same body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit.verify_run import checkpoints, verify_scan
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.report import content, evidence, render
from keel.views.port import ViewStore


@dataclass(frozen=True)
class Report:
    html: str
    document: dict[str, Any]  # what the report says, verification and evidence included
    ok: bool  # verification passed and every listed event has a valid proof
    signed_by: str | None

    def pdf(self) -> bytes:
        return render.pdf(self.html)

    def write(self, path: Path) -> None:
        """FILE.html or FILE.pdf, by its suffix."""
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            path.write_text(self.html, encoding="utf-8")
        elif suffix == ".pdf":
            path.write_bytes(self.pdf())
        else:
            raise KeelError(
                f"{path}: a report is written as .html or .pdf, not {suffix or 'no suffix'}",
                hint="name the file FILE.html or FILE.pdf",
            )


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
    kept: list[Any] = []

    def keep(event: Any) -> None:
        if event.EVENT_TYPE in content.RECONCILIATION and event.family == family:
            kept.append(event)

    verification, scan = verify_scan(rt, witnesses, skip, keep)
    doc = content.gather(views, rt.artifacts.read_bytes, family, envs, start, end, kept)
    latest = None
    for _, event in checkpoints(rt):
        latest = event
    notes = [t.note for t in latest.trees] if latest is not None else []
    proved = evidence.proofs(content.listed_events(doc), scan, notes)
    proved["audit_keys"] = evidence.public_keys(rt.trust, cp.AUDIT_IDENTITY)
    proved["report_keys"] = evidence.public_keys(rt.trust, identity)
    page = render.body(doc, verification, proved, identity, len(witnesses))
    note = None
    if rt.trust.enabled:
        when = (now or datetime.now(UTC)).replace(microsecond=0)
        note = evidence.sign(doc, render.body_of(page), when, rt.signer, identity)
    ok = verification["ok"] and all(not p["problem"] for p in proved["proofs"])
    return Report(
        html=render.signed_html(page, note),
        document={"report": doc, "verification": verification, "evidence": proved},
        ok=ok,
        signed_by=identity if note else None,
    )
