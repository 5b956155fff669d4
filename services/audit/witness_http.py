"""`keel audit witness serve`: a small HTTP witness another team or machine runs (the C2SP
tlog-witness model, in JSON). It holds the latest checkpoint of each tree per log key, cosigns
a new one only after an RFC 9162 consistency proof from the one it holds, and keeps both notes
when they conflict: a pair signed by one key that cannot both be true (equivocation).

POST /add-checkpoint  {"old": <size the client believes is held>, "proof": [hex, ...],
                       "checkpoint": <signed note>, "public_key": <base64 Ed25519>}
    200 {"cosignature": <signature line>, "kind": first|same|extends}
    409 {"held_size": n}        `old` is not the size held: fetch it, prove from there
    409 {"conflict": detail}    the two are inconsistent: both kept (GET shows them)
    403 / 422                   not signed by the log's pinned key / unreadable
GET /logs/{log}     {"held": [notes], "conflicts": [{"held", "offered", "detail", "at"}]}

A log is named by its signing key's name; its public key is pinned on first contact (trust on
first use, written under the state directory), so a later key for the same name is refused.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from keel.audit import checkpoint as cp
from keel.audit.witness import cosign, judge, log_id
from keel.audit.witness_store import WitnessStore
from keel.signing import PublicKey, Trust

MAX_PROOF = 64  # hashes: a tree of 2^63 leaves needs fewer


class Offer(BaseModel):
    old: int = Field(ge=0)
    proof: list[str] = Field(max_length=MAX_PROOF)
    checkpoint: str = Field(max_length=8192)
    public_key: str = Field(max_length=100)


def _witness_key(state: Path) -> bytes:
    """The witness's own Ed25519 key (made on first start, 0600), for its cosignatures."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = state / "witness.key"
    if path.exists():
        return path.read_bytes()
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return raw


def create_app(state: Path, name: str = "keel-witness") -> FastAPI:
    app = FastAPI(title="Keel witness")
    app.include_router(router(state, name))
    return app


def router(state: Path, name: str = "keel-witness") -> APIRouter:
    """The witness's routes, for its own app or beside another's."""
    store = WitnessStore(state / "logs")
    private = _witness_key(state)
    app = APIRouter()

    def refuse(code: int, **doc: Any) -> JSONResponse:
        return JSONResponse(doc, status_code=code)

    @app.post("/add-checkpoint")
    def add(offer: Offer) -> Any:
        try:
            note = cp.parse(offer.checkpoint)
            public = base64.b64decode(offer.public_key, validate=True)
            proof = [bytes.fromhex(h) for h in offer.proof]
        except ValueError as exc:
            return refuse(422, error=f"unreadable offer: {exc}")
        log = log_id(note)
        pinned = store.where(log) / "key.pub"
        if not pinned.exists():
            pinned.parent.mkdir(parents=True, exist_ok=True)
            pinned.write_text(base64.b64encode(public).decode(), encoding="utf-8")
        elif base64.b64decode(pinned.read_text(encoding="utf-8")) != public:
            return refuse(403, error=f"log {log} is pinned to another public key")
        key_name = note.signatures[0][0] if note.signatures else ""
        identity, _, key_id = key_name.removeprefix("keel-").rpartition("-")
        trust = Trust([PublicKey(identity, key_id, public)])
        bad = cp.check(note, trust)
        if bad is not None:
            return refuse(403, error=f"checkpoint not signed by the log's key: {bad}")
        held_text = store.held(log).get(note.origin)
        held = cp.parse(held_text) if held_text else None
        if (held.size if held else 0) != offer.old and offer.old <= note.size:
            return refuse(409, held_size=held.size if held else 0)
        verdict = judge(held, note, proof)
        if verdict.kind == "conflict" and held_text is not None:
            store.conflict(log, held_text, offer.checkpoint, verdict.detail)
            return refuse(409, conflict=verdict.detail)
        if not verdict.accepted:
            return refuse(409, held_size=held.size if held else 0, error=verdict.detail)
        if verdict.kind != "same":
            store.hold(log, offer.checkpoint)
        return {"kind": verdict.kind, "cosignature": cosign(note.text, name, private)}

    @app.get("/logs/{log}")
    def show(log: str) -> Any:
        return {"held": list(store.held(log).values()), "conflicts": store.conflicts(log)}

    return app
