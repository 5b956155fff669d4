"""Talking to witnesses: offer a checkpoint to an HTTP witness (`keel audit witness serve`)
with the consistency proof it asks for, read back what a witness holds, and turn conflicting
pairs into problems `verify` prints.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit.witness import log_id
from keel.errors import KeelError
from keel.log.port import TopicPartition
from keel.signing import Trust


def _call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data, {"Content-Type": "application/json"}, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": str(exc)}
    except (OSError, ValueError) as exc:
        raise KeelError(
            f"the witness at {url} did not answer: {exc}",
            hint="check the URL and that `keel audit witness serve` runs there",
        ) from exc


def held(base: str, log: str) -> dict[str, Any]:
    """{"held": [notes], "conflicts": [...]} of one log at the witness."""
    status, doc = _call(f"{base.rstrip('/')}/logs/{log}")
    if status != 200:
        raise KeelError(f"the witness at {base} answered HTTP {status}: {doc}")
    return doc


def offer(
    base: str,
    note_text: str,
    public: bytes,
    leaves: Mapping[TopicPartition, Sequence[bytes]],
) -> dict[str, Any]:
    """Offer one tree's note with PROOF(held size, tree) computed from `leaves` (the log's, in
    the format the note's tree holds them). Returns the witness's answer plus "status"."""
    note = cp.parse(note_text)
    tree = list(leaves.get(note.tree, []))[: note.size]
    current = held(base, log_id(note))
    by_origin = {n.split("\n", 1)[0]: n for n in current.get("held", [])}
    old = cp.parse(by_origin[note.origin]).size if note.origin in by_origin else 0
    for _ in range(3):  # another writer may move the witness between the read and the offer
        proof = merkle.consistency_proof(old, tree) if 0 < old <= len(tree) else []
        body = {
            "old": old,
            "proof": [h.hex() for h in proof],
            "checkpoint": note_text,
            "public_key": base64.b64encode(public).decode(),
        }
        status, answer = _call(f"{base.rstrip('/')}/add-checkpoint", body)
        if status == 409 and "held_size" in answer and answer["held_size"] != old:
            old = int(answer["held_size"])
            continue
        return {**answer, "status": status}
    return {**answer, "status": status}


def remote_notes(
    bases: Sequence[str], trust: Trust
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """(notes held by each witness, conflicts they kept) for every audit key of `trust`."""
    logs = sorted(cp.key_name(k) for k in trust.keys.values() if k.identity == cp.AUDIT_IDENTITY)
    notes: list[tuple[str, str]] = []
    conflicts: list[dict[str, Any]] = []
    for base in bases:
        for log in logs:
            doc = held(base, log)
            notes += [(f"witness {base}", str(n)) for n in doc.get("held", [])]
            conflicts += [{**c, "witness": base} for c in doc.get("conflicts", [])]
    return notes, conflicts


def equivocations(
    notes: Sequence[tuple[str, str]], conflicts: Sequence[dict[str, Any]], trust: Trust
) -> list[dict[str, str]]:
    """Pairs of notes both validly signed by an audit key that cannot both be true: the same
    tree and size with different roots (among every note seen), or a pair a witness kept as
    conflicting. Each names both sources and carries both notes, the evidence itself."""
    out: list[dict[str, str]] = []
    seen: dict[tuple[str, int], tuple[str, str, bytes]] = {}
    for source, text in notes:
        note = _valid(text, trust)
        if note is None:
            continue
        first = seen.setdefault((note.origin, note.size), (source, text, note.root))
        if first[2] != note.root:
            out.append(
                {
                    "where": f"{note.origin} size {note.size}",
                    "detail": f"{first[0]} and {source} hold two different roots",
                    "first": first[1],
                    "second": text,
                }
            )
    for c in conflicts:
        a, b = _valid(str(c.get("held", "")), trust), _valid(str(c.get("offered", "")), trust)
        if a is None or b is None:
            continue  # a pair not both signed by the audit key proves nothing
        out.append(
            {
                "where": f"{a.origin} sizes {a.size} and {b.size}",
                "detail": f"witness {c.get('witness', '')} kept a conflicting pair: "
                f"{c.get('detail', '')}",
                "first": str(c["held"]),
                "second": str(c["offered"]),
            }
        )
    return out


def _valid(text: str, trust: Trust) -> cp.Note | None:
    try:
        note = cp.parse(text)
    except ValueError:
        return None
    return note if cp.check(note, trust) is None else None
