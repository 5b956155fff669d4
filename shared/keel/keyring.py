"""The keyring as the trail records it: a pure fold of the keyring topic's events (decision 0022).

Each KeyAdded / KeyRotated / KeyRetired / UnsignedHistoryAdopted must be signed by an admin key
of the keyring folded so far; the very first event of a trail may only be the admin key adding
itself (the genesis, self-signed). Anything else is left out and named. `diff` then says where
keys.toml (the working copy every signature check reads) differs from the trail, key by key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from keel.events import generated as g
from keel.signing import ADMIN_EVENTS, ADMIN_IDENTITY, PublicKey, Trust, key_id, keyring_digest

Adopted = dict[tuple[str, int], tuple[int, str]]


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    adopted: Adopted = field(default_factory=dict)
    adopted_by: tuple[str, ...] = ()  # reasons given by each adoption, in order

    def digest(self) -> str:
        return keyring_digest(self.keys.values(), self.adopted)

    @property
    def admins(self) -> list[PublicKey]:
        return [k for k in self.keys.values() if k.identity == ADMIN_IDENTITY]


@dataclass(frozen=True)
class Folded:
    ring: Keyring
    states: frozenset[str]  # the digest of every keyring the trail passed through
    refused: tuple[tuple[str, str], ...]  # (where, why) of keyring events left out


def evolve(ring: Keyring, event: Any) -> Keyring:
    """The keyring after one (already authenticated) keyring event."""
    keys = dict(ring.keys)
    created = event.envelope.occurred_at.isoformat(timespec="seconds")
    if isinstance(event, g.KeyAdded | g.KeyRotated):
        public = base64.b64decode(event.public)
        if isinstance(event, g.KeyRotated) and event.retired_key_id in keys:
            keys[event.retired_key_id] = replace(keys[event.retired_key_id], status="retired")
        keys[event.key_id] = PublicKey(event.identity, event.key_id, public, "active", created)
    elif isinstance(event, g.KeyRetired) and event.key_id in keys:
        keys[event.key_id] = replace(keys[event.key_id], status=event.status)
    elif isinstance(event, g.UnsignedHistoryAdopted):
        adopted = dict(ring.adopted)
        for t in event.trees:
            adopted[(t.topic, t.partition)] = (t.size, t.root)
        return Keyring(keys, adopted, (*ring.adopted_by, event.reason))
    return Keyring(keys, dict(ring.adopted), ring.adopted_by)


def authenticate(ring: Keyring, value: bytes, sig: bytes | None, event: Any) -> str | None:
    """None when an admin key of `ring` signed the event (or it is the self-signed genesis of
    an empty keyring); else why not."""
    if event.EVENT_TYPE not in ADMIN_EVENTS:
        return f"{event.EVENT_TYPE} does not belong on the keyring topic"
    if malformed := _malformed(event):
        return malformed
    admins = [k for k in ring.admins if k.status == "active"]
    if not admins:
        if not (isinstance(event, g.KeyAdded) and event.identity == ADMIN_IDENTITY):
            return "the trail's first keyring event must be the admin key adding itself"
        public = base64.b64decode(event.public)
        admins = [PublicKey(ADMIN_IDENTITY, event.key_id, public)]
    verdict = Trust(admins).check(value, sig, event.EVENT_TYPE)
    return verdict.problem and f"not signed by the trail's admin key ({verdict.problem})"


def _malformed(event: Any) -> str | None:
    if not isinstance(event, g.KeyAdded | g.KeyRotated):
        if isinstance(event, g.KeyRetired) and event.status not in ("retired", "revoked"):
            return f"status {event.status!r} is neither retired nor revoked"
        return None
    try:
        public = base64.b64decode(event.public, validate=True)
    except binascii.Error:
        return f"key {event.key_id}: the public key is not base64"
    if key_id(public) != event.key_id:
        return f"key {event.key_id}: its ID is not the digest of its public key"
    return None


def fold(items: Iterable[tuple[str, bytes, bytes | None, Any]]) -> Folded:
    """items: (where, value, signature record, decoded event) of the keyring topic, in order."""
    ring = Keyring()
    states = {ring.digest()}
    refused: list[tuple[str, str]] = []
    for where, value, sig, event in items:
        problem = authenticate(ring, value, sig, event)
        if problem is not None:
            refused.append((where, problem))
            continue
        ring = evolve(ring, event)
        states.add(ring.digest())
    return Folded(ring, frozenset(states), tuple(refused))


def diff(trail: Keyring, file_keys: Mapping[str, PublicKey], file_adopted: Adopted) -> list[str]:
    """Where keys.toml differs from the trail's keyring: one sentence per key or tree."""
    out: list[str] = []
    for kid in sorted(set(file_keys) | set(trail.keys)):
        mine, theirs = file_keys.get(kid), trail.keys.get(kid)
        if theirs is None and mine is not None:
            out.append(
                f"key {kid} of {mine.identity!r} is in keys.toml but the trail never recorded "
                "it (a key added without the admin key)"
            )
        elif mine is None and theirs is not None:
            out.append(f"key {kid} of {theirs.identity!r} is in the trail but not in keys.toml")
        elif mine is not None and theirs is not None:
            if (mine.identity, mine.public) != (theirs.identity, theirs.public):
                out.append(
                    f"key {kid}: keys.toml says identity {mine.identity!r} and a different "
                    f"public key than the trail ({theirs.identity!r})"
                )
            elif mine.status != theirs.status:
                out.append(
                    f"key {kid} of {mine.identity!r} is {mine.status!r} in keys.toml, "
                    f"{theirs.status!r} in the trail"
                )
    for tp in sorted(set(file_adopted) | set(trail.adopted)):
        if file_adopted.get(tp) != trail.adopted.get(tp):
            out.append(
                f"adopted history of {tp[0]}/{tp[1]}: keys.toml says {file_adopted.get(tp)}, "
                f"the trail {trail.adopted.get(tp)}"
            )
    return out
