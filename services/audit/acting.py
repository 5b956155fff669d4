"""Commands over HTTP act for the person whose token it is, and say how they were authenticated.

An act token belongs to one identity. What the command records names that identity as its
actor (the same name the CLI would record, so separation of duties compares like with like),
and its reason carries how the person was authenticated and who signed. Where the server holds
the person's private key (keys.toml lists an active key for them and KEEL_KEYS_DIR holds its
private half) their key signs, as `KEEL_IDENTITY=NAME keel ...` would; otherwise each event is
signed, as before, by the key of the service that produced it: on behalf of the person, and
both the record and the answer say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from keel.bootstrap import Runtime
from keel.secure.tokens import Principal


@dataclass(frozen=True)
class Attestation:
    identity: str
    token_id: str
    signed_by: str | None  # the person's identity when their key signs; None: on behalf
    signed: bool  # False: the project declares no keys (unsigned mode)

    def note(self) -> str:
        how = f"authenticated by API token {self.token_id} over the audit HTTP API"
        if not self.signed:
            sig = "unsigned (the project declares no keys)"
        elif self.signed_by:
            sig = f"signed by {self.signed_by}'s key"
        else:
            sig = f"signed on behalf of {self.identity} by the server's service keys"
        return f"by {self.identity}, {how}; {sig}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "token": self.token_id,
            "method": "api-token",
            "signed_by": self.signed_by,
            "on_behalf": self.signed and self.signed_by is None,
            "note": self.note(),
        }


def attest(rt: Runtime, principal: Principal) -> Attestation:
    """Pure decision: who signs for this principal on this server."""
    assert principal.identity
    signed = rt.trust.enabled
    own = signed and rt.signer.can_sign(principal.identity)
    signer = principal.identity if own else None
    return Attestation(principal.identity, principal.token_id, signer, signed)


def runtime_for(rt: Runtime, att: Attestation) -> Runtime:
    """The server's runtime, acting as the person: same log, views and artifacts (shared, not
    reopened), their name as the actor and, where the server holds it, their key."""
    settings = rt.settings.model_copy(
        update={"actor": att.identity, "identity": att.signed_by or ""}
    )
    return replace(rt, settings=settings, signer=replace(rt.signer, identity=att.signed_by))


def noted(reason: str | None, att: Attestation) -> str:
    """The reason as recorded: the person's words, then how they were authenticated."""
    note = f"[{att.note()}]"
    return f"{reason} {note}" if reason else note
