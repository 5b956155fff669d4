"""The evidence a review pack carries: for each listed event an RFC 9162 inclusion proof against
the latest signed checkpoint, the checkpoint notes and the audit public keys, and the report's
own signature (a signed note over the SHA-256 of the report's body). Everything here can be
checked with SHA-256 and Ed25519 alone: `tools/check_report.py` does, importing nothing from
Keel."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit import trees as tr
from keel.audit.verify import LogScan
from keel.errors import KeelError
from keel.signing import Signer, Trust

HEADER = "keel-report"
# memoise subtrees of >= this many leaves: proofs of a few events in a large log share them
MEMO_MIN = 1024


def public_keys(trust: Trust, identity: str) -> dict[str, str]:
    """Signed-note key name -> base64 Ed25519 public key, for every key of `identity`."""
    return {
        cp.key_name(k): base64.b64encode(k.public).decode()
        for k in sorted(trust.keys.values(), key=lambda k: k.id)
        if k.identity == identity
    }


def proofs(
    listed: Sequence[tuple[str, str]], scan: LogScan, notes: Sequence[str]
) -> dict[str, Any]:
    """Inclusion proofs of the listed events against the checkpoint `notes` (one per tree).
    An event no checkpoint covers yet, or one whose proof no longer leads to the signed root
    (the log changed under the checkpoint), is listed with why: the reader sees it."""
    parsed: dict[tuple[str, int], tuple[cp.Note, str]] = {}
    for text in notes:
        note = cp.parse(text)
        parsed[note.tree] = (note, text)
    wanted: dict[tuple[str, int], list[tuple[str, str, int]]] = {}
    out: list[dict[str, Any]] = []
    for event_id, what in listed:
        found = scan.positions.get(event_id)
        if found is None:
            out.append({"event_id": event_id, "what": what, "problem": "not in the log"})
            continue
        tp, index, _ = found
        head = parsed.get(tp)
        if head is None or head[0].size <= index:
            out.append(
                {"event_id": event_id, "what": what, "problem": "no checkpoint covers it yet"}
            )
            continue
        wanted.setdefault(tp, []).append((event_id, what, index))
    for tp, items in wanted.items():
        note, _ = parsed[tp]
        leaves = scan.leaves[tp][: note.size]
        paths = merkle.inclusion_proofs(leaves, [i for _, _, i in items], MEMO_MIN)
        for (event_id, what, index), path in zip(items, paths, strict=True):
            rec = scan.positions[event_id][2]
            ok = merkle.verify_inclusion(index, note.size, leaves[index], path, note.root)
            out.append(
                {
                    "event_id": event_id,
                    "what": what,
                    "tree": tr.tp_key(tp),
                    **tr.proof_fields(rec, index, note.size, path, _leaf2_from(note)),
                    "problem": None if ok else "the path does not lead to the checkpoint's root",
                }
            )
    order = {eid: i for i, (eid, _) in enumerate(listed)}
    out.sort(key=lambda p: order[p["event_id"]])
    return {
        "checkpoints": sorted(parsed[tp][1] for tp in parsed),
        "proofs": out,
    }


def _leaf2_from(note: cp.Note) -> int:
    """Where the note's tree holds leaf format 2 (decision 0021); a note written before the
    format is all format 1."""
    return note.size if note.leaf2_from is None else note.leaf2_from


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def statement(doc: dict[str, Any], body: str, at: datetime) -> str:
    """The text a report's signature covers: what the report is about and its body's digest."""
    stamp = at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        f"{HEADER}\nfamily {doc['family']}\nperiod {doc['from']} {doc['to']}\n"
        f"envs {','.join(doc['envs'])}\nsha256 {body_digest(body)}\ntime {stamp}\n"
    )


def pdf_statement(doc: dict[str, Any], body: str, pdf: bytes, at: datetime) -> str:
    """The text a PDF pack's seal covers: the PDF's own bytes (so its visible pages are signed,
    not only the HTML attached to it) and the digest of that HTML's body."""
    head = statement(doc, body, at).replace(f"{HEADER}\n", f"{HEADER}-pdf\n", 1)
    return head.replace("\nsha256 ", f"\nsha256 {hashlib.sha256(pdf).hexdigest()}\nhtml-sha256 ", 1)


def may_sign(trust: Trust, identity: str) -> None:
    """Only an identity with the report-signing role signs a pack: a service key (serve's, say)
    in the wrong hands must not be able to attest one."""
    if identity not in trust.report_signers:
        allowed = ", ".join(sorted(trust.report_signers)) or "nobody"
        raise KeelError(
            f"identity {identity!r} may not sign review packs (allowed: {allowed})",
            hint=f"run as one that may (KEEL_IDENTITY=audit), or grant it in keel.toml: "
            f"[identities.{identity}] sign_reports = true",
        )


def sign(text: str, signer: Signer, identity: str) -> str:
    may_sign(signer.trust, identity)
    return cp.sign(text, signer, identity)
