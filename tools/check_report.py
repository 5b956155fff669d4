#!/usr/bin/env python3
"""Check a Keel review pack without Keel: the report's signature, the checkpoint notes it was
verified against, and the inclusion proof of every event it lists.

    python tools/check_report.py REPORT.html|REPORT.pdf [--keys keys.toml]

Needs Python >= 3.11 and `cryptography` (Ed25519); `pypdf` only for a PDF (the HTML is attached
to it). Imports nothing from Keel on purpose: an auditor can read these ~150 lines and trust them
instead of the tool that wrote the report. Give --keys (the project's keys.toml, which the team
commits) so the keys are yours, not the report's; without it the keys the report embeds are
used and the check only says the report is self-consistent.

What is checked, from the definitions:
- signed notes (C2SP): body, blank line, "— <name> base64(keyhash[4] || Ed25519 signature)",
  keyhash = SHA-256(name || "\\n" || 0x01 || public key)[:4];
- the report's note states the SHA-256 of the file up to the "<!--/keel-report-body-->" marker;
- each proof (RFC 9162 2.1.3.2): leaf hash SHA-256(0x00 || leaf data) up the audit path to the
  root of the checkpoint note of its tree; the leaf data holds the event ID it claims to be.
Exit 0 when everything checks, 1 otherwise (each failure printed), 2 on unusable input.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

END = "<!--/keel-report-body-->"
ATTACHMENT = "keel-report.html"


def load(path: Path) -> str:
    if path.suffix.lower() != ".pdf":
        return path.read_text(encoding="utf-8")
    from pypdf import PdfReader

    files = PdfReader(path).attachments
    if ATTACHMENT not in files:
        raise SystemExit(f"{path}: no {ATTACHMENT} attached; not a Keel review pack PDF")
    return files[ATTACHMENT][0].decode("utf-8")


def keys_from_toml(path: Path) -> dict[str, bytes]:
    """keys.toml -> signed-note key name ("keel-<identity>-<id>") -> public key; revoked
    keys are left out (they never verify)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        f"keel-{k['identity']}-{k['id']}": base64.b64decode(k["public"])
        for k in doc.get("keys", [])
        if k.get("status", "active") != "revoked"
    }


def note_signer(note: str, keys: dict[str, bytes]) -> str | None:
    """The name of a key in `keys` whose signature on the note verifies, or None."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        return None
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] not in keys:
            continue
        name, blob = parts[1], base64.b64decode(parts[2])
        public = keys[name]
        if blob[:4] != hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], (body + "\n").encode())
            return name
        except InvalidSignature:
            continue
    return None


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn // 2, sn // 2
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn // 2, sn // 2
    return r if sn == 0 else None


def check(page: str, keys: dict[str, bytes] | None) -> list[str]:
    failures: list[str] = []
    cut = page.find(END)
    found = re.search(r'<pre id="keel-signature">(.*?)</pre>', page, re.S)
    evidence_tag = re.search(
        r'<script type="application/json" id="keel-evidence">(.*?)</script>', page, re.S
    )
    if cut < 0 or evidence_tag is None:
        raise SystemExit("not a Keel review pack (no body marker or evidence)")
    data: dict[str, Any] = json.loads(evidence_tag.group(1))
    ev = data["evidence"]
    audit_keys = (
        keys if keys is not None else {n: base64.b64decode(k) for n, k in ev["audit_keys"].items()}
    )
    report_keys = (
        keys if keys is not None else {n: base64.b64decode(k) for n, k in ev["report_keys"].items()}
    )
    # the report's own signature
    if found is None:
        failures.append("the report is not signed")
    else:
        note = html.unescape(found.group(1))
        digest = hashlib.sha256(page[: cut + len(END)].encode("utf-8")).hexdigest()
        stated = re.search(r"^sha256 ([0-9a-f]{64})$", note, re.M)
        if stated is None or stated.group(1) != digest:
            failures.append("the report's body does not match its signed digest (edited)")
        who = note_signer(note, report_keys)
        if who is None:
            failures.append("the report's signature does not verify with the given keys")
        else:
            print(f"report signed by {who}")
    # the checkpoint notes, one per tree
    roots: dict[str, tuple[int, bytes]] = {}
    for note in ev["checkpoints"]:
        lines = note.split("\n")
        who = note_signer(note, audit_keys)
        if who is None or not who.startswith("keel-audit-"):
            failures.append(f"checkpoint {lines[0]}: not signed by an audit key")
            continue
        roots[lines[0].removeprefix("keel/")] = (int(lines[1]), base64.b64decode(lines[2]))
    # every listed event's proof
    proven = 0
    for p in ev["proofs"]:
        what = f"event {p['event_id']} ({p['what']})"
        if p.get("problem") or "leaf_data" not in p:
            failures.append(f"{what}: the report itself says {p.get('problem')}")
            continue
        size, root = roots.get(p["tree"], (None, None))
        leaf_data = base64.b64decode(p["leaf_data"])
        leaf = hashlib.sha256(b"\x00" + leaf_data).digest()
        path = [bytes.fromhex(h) for h in p["inclusion_path"]]
        if size != p["tree_size"] or root is None:
            failures.append(f"{what}: no signed checkpoint of size {p['tree_size']} for its tree")
        elif p["event_id"].encode() not in leaf_data:
            failures.append(f"{what}: the leaf is another event")
        elif root_from_path(p["leaf_index"], size, leaf, path) != root:
            failures.append(f"{what}: the proof does not lead to the checkpoint's root")
        else:
            proven += 1
    print(
        f"{proven} of {len(ev['proofs'])} listed events proven against "
        f"{len(roots)} signed checkpoint tree(s)"
    )
    if not data["verification"]["ok"]:
        failures.append("the report states that verification of the log failed")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--keys", type=Path, help="the project's keys.toml (trust these keys)")
    args = ap.parse_args()
    try:
        page = load(args.report)
        keys = keys_from_toml(args.keys) if args.keys else None
    except (OSError, ValueError) as exc:
        print(f"cannot read input: {exc}", file=sys.stderr)
        return 2
    if keys is None:
        print("no --keys: using the keys the report embeds (self-consistency only)")
    failures = check(page, keys)
    for f in failures:
        print(f"FAIL {f}")
    print("OK: every check passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
