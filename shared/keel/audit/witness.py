"""What a witness decides about a checkpoint it is offered (the C2SP tlog-witness model), and
whether a log's trees may be signed again. Pure functions: no I/O.

A witness holds, per log key and tree origin, the latest checkpoint note it accepted. Offered a
newer one with an RFC 9162 consistency proof from the size it holds, it accepts (and cosigns)
only if the proof links the two roots. Two notes signed by one audit key that no proof links
(the same size with different roots, or a proof that fails) are a conflict: the witness keeps
both, since a signed pair that cannot both be true is evidence that the key's holder showed two
different histories (equivocation), which `keel audit verify` prints.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from keel.audit import checkpoint as cp
from keel.audit import merkle


@dataclass(frozen=True)
class Judgement:
    """accepted: the witness now holds `offered`; kind says why (or why not):
    first | same | extends (accepted), stale (smaller than held: resend with a proof from
    the held size), conflict (equivocation: keep both notes)."""

    accepted: bool
    kind: str
    detail: str


def judge(held: cp.Note | None, offered: cp.Note, proof: Sequence[bytes]) -> Judgement:
    """`proof`: PROOF(held.size, offered tree) as RFC 9162 2.1.4 defines it. Signatures are
    the caller's to check first (a witness pins the log's key)."""
    if held is None:
        return Judgement(True, "first", f"{offered.origin}: first checkpoint held")
    if offered.size < held.size:
        return Judgement(
            False,
            "stale",
            f"{offered.origin}: offered size {offered.size} is older than the {held.size} held",
        )
    if offered.size == held.size:
        if offered.root == held.root:
            return Judgement(True, "same", f"{offered.origin}: already held at {held.size}")
        return Judgement(
            False,
            "conflict",
            f"{offered.origin}: two roots signed for size {held.size} "
            f"({held.root.hex()[:16]} held, {offered.root.hex()[:16]} offered)",
        )
    if merkle.verify_consistency(held.size, offered.size, held.root, offered.root, proof):
        return Judgement(True, "extends", f"{offered.origin}: {held.size} -> {offered.size}")
    return Judgement(
        False,
        "conflict",
        f"{offered.origin}: size {offered.size} does not extend the size {held.size} held "
        "(no valid consistency proof): the tree was rewritten",
    )


def home_id(audit_public: bytes, locator: str) -> str:
    """A home's stable name at a witness: its audit key (the oldest listed, kept through
    rotation) and where its log lives (an embedded home's path, a Kafka cluster's address), so
    two homes sharing a project's keys do not share a witness record."""
    return hashlib.sha256(audit_public + b"\n" + locator.encode()).hexdigest()[:24]


def log_id(note: cp.Note) -> str:
    """A witness's name for the log that signed `note`: its signing key's name (one key, one
    namespace: two forks signed by one key meet there)."""
    name = note.signatures[0][0] if note.signatures else "unsigned"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


@dataclass(frozen=True)
class Anchor:
    """A checkpoint note some holder (the log, the views, a witness) keeps: a later tree must
    extend it."""

    source: str
    note: cp.Note


def anchor_problem(anchor: Anchor, size: int, root_at: bytes | None) -> str | None:
    """None if a tree of `size` leaves whose root at anchor.note.size is `root_at` extends the
    anchor; else what is wrong, in a sentence."""
    n = anchor.note
    if size < n.size:
        return (
            f"{n.origin}: the log's tree now holds {size} records, but the checkpoint "
            f"{anchor.source} holds (time {n.time}) covers {n.size}: records were deleted"
        )
    if root_at != n.root:
        return (
            f"{n.origin}: the first {n.size} records no longer hash to the root the checkpoint "
            f"{anchor.source} holds (time {n.time}): records were altered, inserted or removed"
        )
    return None


def cosign(note_text: str, name: str, private: bytes) -> str:
    """The witness's signature line over a checkpoint body (signed-note shape), so a reader
    can show which witnesses saw it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(private)
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    sig = key.sign(note_text.encode())
    blob = base64.b64encode(cp.key_hash(name, public) + sig).decode()
    return f"\u2014 {name} {blob}\n"
