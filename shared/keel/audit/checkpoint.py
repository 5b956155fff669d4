"""Checkpoints: signed statements of the log's Merkle trees, as C2SP tlog-checkpoint signed notes.

One note per topic-partition tree:

    keel/<topic>/<partition>        origin: which tree
    <size>                          leaves (log records) covered
    <base64 root>                   RFC 9162 root hash
    time <ISO-8601 UTC>             when the projector said so (an extension line)

    — keel-audit-<key id> <base64(4-byte key hash || Ed25519 signature)>

The key hash is SHA-256(name || "\\n" || 0x01 || public key)[:4], as the signed-note spec
defines it for Ed25519, so transparency-log witnesses and verifiers that speak C2SP can cosign
and check these notes. Pure functions except `signed_notes`, which asks a Signer.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from keel.signing import PublicKey, Signer, Trust

AUDIT_IDENTITY = "audit"
LEAF2_LINE = "leaf 2 from "  # extension line: the first leaf index in leaf format 2
# extension line: SHA-256 of the keyring the signer trusted (keys and adoptions, decision 0022)
KEYRING_LINE = "keyring "
_DASH = "\u2014"


def origin(topic: str, partition: int) -> str:
    return f"keel/{topic}/{partition}"


def key_name(key: PublicKey) -> str:
    return f"keel-{key.identity}-{key.id}"


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def body(
    topic: str,
    partition: int,
    size: int,
    root: bytes,
    at: datetime,
    leaf2_from: int | None = None,
    keyring: str | None = None,
) -> str:
    """leaf2_from: where the tree's leaf format 2 starts (decision 0021), stated so a verifier
    knows which leaf bytes to hash; None only in notes written before format 2."""
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = f"{origin(topic, partition)}\n{size}\n{base64.b64encode(root).decode()}\ntime {stamp}\n"
    text = text if leaf2_from is None else text + f"{LEAF2_LINE}{leaf2_from}\n"
    # keyring: what the checkpoint's signer held as the keyring; a note without it (written
    # before decision 0022) stays verifiable, it just commits to no keyring
    return text if keyring is None else text + f"{KEYRING_LINE}{keyring}\n"


def sign(text: str, signer: Signer, identity: str = AUDIT_IDENTITY) -> str:
    """A signed note: `text`, a blank line, the signature line of `identity`'s active key."""
    key, signature = signer.sign_note(identity, text.encode())
    name = key_name(key)
    blob = base64.b64encode(key_hash(name, key.public) + signature).decode()
    return f"{text}\n{_DASH} {name} {blob}\n"


@dataclass(frozen=True)
class Note:
    origin: str
    size: int
    root: bytes
    time: str
    text: str  # the signed body
    signatures: tuple[tuple[str, bytes], ...]  # (key name, 4-byte hash + signature)
    leaf2_from: int | None = None  # None: a note from before leaf format 2 (all format 1)
    keyring: str | None = None  # None: a note from before the keyring was in the trail

    @property
    def tree(self) -> tuple[str, int]:
        _, topic, partition = self.origin.split("/")
        return topic, int(partition)


def parse(note: str) -> Note:
    """Raises ValueError naming what is wrong."""
    text, sep, sigs = note.partition("\n\n")
    if not sep:
        raise ValueError("no blank line before the signatures")
    lines = text.split("\n")
    if len(lines) < 3 or not lines[0].startswith("keel/") or lines[0].count("/") != 2:
        raise ValueError("the first line is not a Keel tree origin (keel/<topic>/<partition>)")
    try:
        size = int(lines[1])
        root = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise ValueError(f"size or root hash unreadable ({exc})") from exc
    stamp = next((x[5:] for x in lines[3:] if x.startswith("time ")), "")
    leaf2 = next((x[len(LEAF2_LINE) :] for x in lines[3:] if x.startswith(LEAF2_LINE)), None)
    if leaf2 is not None and not leaf2.isdigit():
        raise ValueError(f"the leaf format line {LEAF2_LINE}{leaf2!r} is not a leaf index")
    signatures = []
    for line in sigs.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH:
            raise ValueError(f"bad signature line {line!r}")
        signatures.append((parts[1], base64.b64decode(parts[2])))
    return Note(
        lines[0],
        size,
        root,
        stamp,
        text + "\n",
        tuple(signatures),
        None if leaf2 is None else int(leaf2),
        next((x[len(KEYRING_LINE) :] for x in lines[3:] if x.startswith(KEYRING_LINE)), None),
    )


def check(note: Note, trust: Trust) -> str | None:
    """None if some key of the audit identity that keys.toml lists signed it; else the problem."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    names = {
        key_name(k): k
        for k in trust.keys.values()
        if k.identity == AUDIT_IDENTITY and k.status != "revoked"
    }
    for name, blob in note.signatures:
        key = names.get(name)
        if key is None or blob[:4] != key_hash(name, key.public):
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(blob[4:], note.text.encode())
            return None
        except InvalidSignature:
            return f"the signature by {name} does not match the note (altered)"
    return "not signed by any audit key that keys.toml lists"
