#!/usr/bin/env python3
"""Check a Keel review pack without Keel: the report's signature and who made it, that nothing
rides outside what was signed, the checkpoint notes it was verified against, the inclusion proof
of every event it lists, and for a PDF its own signature and that its pages say what was signed.

    python tools/check_report.py REPORT.html|REPORT.pdf [--keys keys.toml] [--project keel.toml]

Needs Python >= 3.11 and `cryptography` (Ed25519); `pypdf` only for a PDF. Imports nothing from
Keel on purpose: an auditor can read these lines and trust them instead of the tool that wrote
the report. Give --keys (the project's keys.toml, which the team commits) so the keys are yours,
not the report's; who may sign a pack is read from keel.toml (--project, else the keel.toml
beside keys.toml; `[identities.NAME] sign_reports = true`, and `audit` unless it says false).
Without --keys the keys and signers the report embeds are used: self-consistency only.

What is checked, from the definitions (docs/review-pack-checker.md):
- signed notes (C2SP): body, blank line, "— <name> base64(keyhash[4] || Ed25519 signature)",
  keyhash = SHA-256(name || "\\n" || 0x01 || public key)[:4], name = keel-<identity>-<key id>;
- an HTML pack is exactly BODY + SIG_HEAD + NOTE + SIG_TAIL, BODY ends with the only
  "<!--/keel-report-body-->" in the file, and NOTE states SHA-256(BODY);
- a PDF pack is exactly PDF + "%keel-report-signature " + base64(NOTE) + "\\n", NOTE states
  SHA-256(PDF) and the attached HTML's body digest; the PDF's page text equals the attached
  HTML's visible text (whitespace aside); the attached HTML is checked as above;
- each proof (RFC 9162 2.1.3.2): leaf hash SHA-256(0x00 || leaf data) up the audit path to the
  root of the checkpoint note of its tree; the leaf data holds the event ID it claims to be.
Exit 0 when everything checks, 1 otherwise (each failure printed), 2 on unusable input.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import io
import json
import re
import sys
import tomllib
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

END = "<!--/keel-report-body-->"
ATTACHMENT = "keel-report.html"
SIG_HEAD = '\n<pre id="keel-signature">'
SIG_TAIL = "</pre></section>\n</body>\n</html>\n"
PDF_SEAL = b"%keel-report-signature "
DEFAULT_SIGNERS = {"audit"}
KEY_NAME = re.compile(r"keel-(.+)-([0-9a-f]{16})")


class Unusable(Exception):
    """Not a Keel review pack at all (exit 2)."""


def keys_from_toml(path: Path) -> dict[str, bytes]:
    """keys.toml -> signed-note key name ("keel-<identity>-<id>") -> public key; revoked
    keys are left out (they never verify)."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        f"keel-{k['identity']}-{k['id']}": base64.b64decode(k["public"])
        for k in doc.get("keys", [])
        if k.get("status", "active") != "revoked"
    }


def signers_from_toml(path: Path | None) -> set[str]:
    """Identities with the report-signing role: audit, plus or minus keel.toml's
    `[identities.NAME] sign_reports = true|false`."""
    signers = set(DEFAULT_SIGNERS)
    if path is None or not path.exists():
        return signers
    for name, spec in tomllib.loads(path.read_text(encoding="utf-8")).get("identities", {}).items():
        if spec.get("sign_reports") is True:
            signers.add(name)
        elif spec.get("sign_reports") is False:
            signers.discard(name)
    return signers


def note_signer(note: str, keys: dict[str, bytes]) -> str | None:
    """The name of a key in `keys` whose signature on the note verifies, or None."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        return None
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] not in keys:
            continue
        try:
            name, blob = parts[1], base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        public = keys[name]
        if blob[:4] != hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], (body + "\n").encode())
            return name
        except InvalidSignature:
            continue
    return None


def signed_by_role(note: str, keys: dict[str, bytes], signers: set[str], what: str) -> list[str]:
    """[] when a key of an identity with the report-signing role signed `note`."""
    who = note_signer(note, keys)
    if who is None:
        return [f"{what}: the signature does not verify with the given keys"]
    match = KEY_NAME.fullmatch(who)
    identity = match.group(1) if match else who
    if identity not in signers:
        allowed = ", ".join(sorted(signers)) or "nobody"
        return [
            f"{what}: signed by {who}, but {identity!r} may not sign review packs "
            f"(allowed: {allowed})"
        ]
    print(f"{what} signed by {who}")
    return []


def stated(note: str, field: str) -> str | None:
    found = re.search(rf"^{field} (\S+)$", note.partition("\n\n")[0], re.M)
    return found.group(1) if found else None


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


def split_html(page: str) -> tuple[str, str | None, list[str]]:
    """(body, note or None, failures): the file must be the body and exactly the signature
    section Keel writes after it; a byte more (a <script>, a <style>) is not signed."""
    if page.count(END) != 1:
        raise Unusable(f"not a Keel review pack (the body marker occurs {page.count(END)} times)")
    body = page[: page.index(END) + len(END)]
    rest = page[len(body) :]
    if rest.startswith(SIG_HEAD) and rest.endswith(SIG_TAIL):
        note = rest[len(SIG_HEAD) : len(rest) - len(SIG_TAIL)]
        if "<" not in note and "&" not in note:
            return body, note, []
    if 'id="keel-unsigned"' in rest and "keel-signature" not in rest:
        return body, None, ["the report is not signed"]
    return body, None, ["something other than the signature follows the signed body: not signed"]


def evidence_of(body: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="keel-evidence">(.*?)</script>', body, re.S
    )
    if found is None:
        raise Unusable("not a Keel review pack (no evidence in the signed body)")
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def trusted(
    ev: dict[str, Any], keys: dict[str, bytes] | None, signers: set[str] | None
) -> tuple[dict[str, bytes], dict[str, bytes], set[str]]:
    """(audit keys, report keys, report signers): yours, else what the report embeds."""
    if keys is not None and signers is not None:
        return keys, keys, signers
    decode = lambda named: {n: base64.b64decode(k) for n, k in named.items()}  # noqa: E731
    return (
        decode(ev["audit_keys"]),
        decode(ev["report_keys"]),
        set(ev.get("report_signers", DEFAULT_SIGNERS)),
    )


def check(page: str, keys: dict[str, bytes] | None, signers: set[str] | None) -> list[str]:
    body, note, failures = split_html(page)
    data = evidence_of(body)
    ev = data["evidence"]
    audit_keys, report_keys, signers = trusted(ev, keys, signers)
    # the report's own signature, over exactly its body
    if note is not None:
        if stated(note, "sha256") != hashlib.sha256(body.encode("utf-8")).hexdigest():
            failures.append("the report's body does not match its signed digest (edited)")
        rep = data["report"]
        if (stated(note, "family"), stated(note, "envs")) != (rep["family"], ",".join(rep["envs"])):
            failures.append("the signed note names another family or environments")
        failures += signed_by_role(note, report_keys, signers, "report")
    # the checkpoint notes, one per tree
    roots: dict[str, tuple[int, bytes]] = {}
    for cp in ev["checkpoints"]:
        lines = cp.split("\n")
        who = note_signer(cp, audit_keys)
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


class _Visible(HTMLParser):
    """The text a browser shows: no script, style, title or SVG (charts are drawn as paths)."""

    HIDDEN = frozenset({"script", "style", "title", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.hidden += tag in self.HIDDEN

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in self.HIDDEN

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _squeeze(text: str) -> str:
    """Compared without whitespace (line breaks fall where the page width puts them)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def check_pdf(data: bytes, keys: dict[str, bytes] | None, signers: set[str] | None) -> list[str]:
    from pypdf import PdfReader

    cut = data.rfind(b"\n" + PDF_SEAL) + 1
    signed, seal = (data[:cut], data[cut:]) if cut else (data, b"")
    reader = PdfReader(io.BytesIO(signed))  # only the signed bytes are read
    files = reader.attachments
    if ATTACHMENT not in files:
        raise Unusable(f"no {ATTACHMENT} attached; not a Keel review pack PDF")
    page = files[ATTACHMENT][0].decode("utf-8")
    failures = check(page, keys, signers)
    body = page[: page.index(END) + len(END)]
    _, report_keys, signers = trusted(evidence_of(body)["evidence"], keys, signers)
    # the PDF's own seal: its bytes, as printed, are what was signed
    blob = seal.removeprefix(PDF_SEAL).removesuffix(b"\n")
    try:
        note = base64.b64decode(blob, validate=True).decode("utf-8") if seal else None
    except (binascii.Error, UnicodeDecodeError):
        note = None
    if note is None or not seal.endswith(b"\n") or b"\n" in blob:
        failures.append("the PDF is not sealed: its pages are not signed (only its attachment)")
    else:
        if stated(note, "sha256") != hashlib.sha256(signed).hexdigest():
            failures.append("the PDF's bytes do not match its signed digest (edited)")
        if stated(note, "html-sha256") != hashlib.sha256(body.encode("utf-8")).hexdigest():
            failures.append("the PDF's seal names another HTML body than the one attached")
        failures += signed_by_role(note, report_keys, signers, "PDF")
    # what a reader sees on the pages is what the attached, signed HTML shows
    seen = _squeeze("".join(p.extract_text() for p in reader.pages))
    shown = _Visible()
    shown.feed(page)
    meant = _squeeze("".join(shown.parts))
    if seen != meant:
        at = next((i for i, (a, b) in enumerate(zip(seen, meant, strict=False)) if a != b), None)
        at = min(len(seen), len(meant)) if at is None else at
        failures.append(
            f"the PDF's pages do not show the signed HTML: from character {at} the pages read "
            f"{seen[at : at + 60]!r}, the signed HTML {meant[at : at + 60]!r}"
        )
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--keys", type=Path, help="the project's keys.toml (trust these keys)")
    ap.add_argument(
        "--project", type=Path, help="keel.toml naming who may sign (default: beside --keys)"
    )
    args = ap.parse_args()
    try:
        data = args.report.read_bytes()
        keys = keys_from_toml(args.keys) if args.keys else None
        project = args.project or (args.keys.with_name("keel.toml") if args.keys else None)
        signers = signers_from_toml(project) if keys is not None else None
        if keys is None:
            print("no --keys: using the keys and signers the report embeds (self-consistency only)")
        if args.report.suffix.lower() == ".pdf":
            failures = check_pdf(data, keys, signers)
        else:
            failures = check(data.decode("utf-8"), keys, signers)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"cannot read input: {exc}", file=sys.stderr)
        return 2
    except Unusable as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for f in failures:
        print(f"FAIL {f}")
    print("OK: every check passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
