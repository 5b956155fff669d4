"""Writing the keyring into the trail (decision 0022): what `keel keys create/retire/adopt`,
`keel init` and `keel demo` record, signed by the admin key (KEEL_ADMIN_DIR, never the home).

`record` brings the trail to keys.toml: it appends, signed by the admin, the KeyAdded /
KeyRotated / KeyRetired events the trail lacks (the admin key adding itself first on a new
trail). `adopt` vouches for the unsigned records a project wrote before it had keys.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keel import keyring as kr
from keel.artifacts.codeversion import code_version
from keel.audit import merkle
from keel.audit import trees as tr
from keel.bootstrap import Runtime, announce_schemas, load_signer, sign_all
from keel.codec import CodecError
from keel.errors import KeelError
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.signing import (
    ADMIN_IDENTITY,
    PublicKey,
    Signer,
    Trust,
    admin_key,
    admin_lock,
    keys_lock,
    load_trust,
    replacing,
    write_keys,
)
from keel.topics import EVENT_TOPICS, topic_for

KEYRING_TOPIC = topic_for("KeyAdded")


def keyring_records(rt: Runtime) -> Iterator[tuple[str, bytes, bytes | None, Any]]:
    """(where, value, signature, event) of every decodable keyring record, in log order."""
    for rec in rt.log.read([KEYRING_TOPIC]):
        try:
            event = decode_event(rt.codec, rec.value)
        except CodecError:
            continue  # verify names undecodable records
        yield tr.position(rec), rec.value, rec.sig, event


def trail(rt: Runtime) -> kr.Folded:
    return kr.fold(keyring_records(rt))


def _admin(admin_dir: Path, keys_file: Path) -> tuple[PublicKey, Any]:
    """The admin key, listed in keys.toml (public half) so every verifier can check it."""
    made = admin_key(admin_dir, create=True)
    assert made is not None  # create=True
    key, private = made
    with keys_lock(keys_file):  # inside the admin lock: that order only (see keys_lock)
        trust = load_trust(keys_file)
        if key.id not in trust.keys:  # one admin key per project file: an older one retired
            write_keys(keys_file, replacing(trust.keys.values(), key), trust.adopted)
    return key, private


def _same_admin(ring: kr.Keyring, admin_dir: Path) -> None:
    """Refuse to sign with an admin key the trail does not know: its events would be refused
    as forged. (Rotating the admin key is a KeyRotated signed by the current one.)"""
    trail_admins = {k.id for k in ring.admins if k.status == "active"}
    local = admin_key(admin_dir, create=False)
    if trail_admins and (local is None or local[0].id not in trail_admins):
        mine = "none" if local is None else local[0].id
        raise KeelError(
            f"the trail's admin key is {', '.join(sorted(trail_admins))}; the admin key in "
            f"{admin_dir} is {mine}: nothing was recorded, and keys.toml now differs from the "
            "trail until it is",
            hint="set KEEL_ADMIN_DIR to the directory holding "
            f"admin.{sorted(trail_admins)[0]}.key, then run `keel keys record`",
        )


def changes(ring: kr.Keyring, file_keys: Sequence[PublicKey], reason: str) -> list[Any]:
    """Pure: the keyring events that bring `ring` to keys.toml's `file_keys` (admin first)."""
    out: list[Any] = []
    ordered = sorted(file_keys, key=lambda k: (k.identity != ADMIN_IDENTITY, k.created, k.id))
    replaced = {  # identity -> its trail key that keys.toml now calls retired
        k.identity: k.id
        for k in ring.keys.values()
        if k.status == "active" and any(f.id == k.id and f.status != "active" for f in file_keys)
    }
    for k in ordered:
        public = base64.b64encode(k.public).decode()
        if k.id not in ring.keys and k.status == "active" and k.identity in replaced:
            old = replaced.pop(k.identity)
            out.append(_event("KeyRotated", g.KeyRotated, k, public, reason, retired_key_id=old))
        elif k.id not in ring.keys:
            out.append(_event("KeyAdded", g.KeyAdded, k, public, reason))
    rotated = {e.retired_key_id for e in out if isinstance(e, g.KeyRotated)}
    for k in ordered:
        known = ring.keys.get(k.id)
        changed = known is None or known.status != k.status
        if k.status != "active" and k.id not in rotated and changed:
            out.append(
                g.KeyRetired(
                    envelope=_envelope("KeyRetired"),
                    identity=k.identity,
                    key_id=k.id,
                    status=k.status,
                    reason=reason,
                )
            )
    return out


def _envelope(event_type: str) -> g.Envelope:
    return envelope(
        event_type,
        subject="keyring",  # one subject: the keyring stays in one ordered partition
        service=ADMIN_IDENTITY,
        code_version=code_version("keel"),
        actor=ADMIN_IDENTITY,
        correlation_id="keyring",
    )


def _event(event_type: str, cls: Any, k: PublicKey, public: str, reason: str, **extra: Any) -> Any:
    return cls(
        envelope=_envelope(event_type),
        identity=k.identity,
        key_id=k.id,
        public=public,
        reason=reason,
        **extra,
    )


def _publish(rt: Runtime, key: PublicKey, private: Any, events: Sequence[Any]) -> None:
    signer = Signer(Trust([key]), {key.id: private}, ADMIN_IDENTITY)
    announce_schemas(rt.log, rt.registry, {e.EVENT_TYPE for e in events}, rt.announced)
    rt.log.append(sign_all(signer, rt.codec, events))


def record(rt: Runtime, admin_dir: Path, reason: str) -> list[Any]:
    """Append what the trail lacks of keys.toml, signed by the admin; returns the events.

    Under the admin directory's lock from reading the trail to writing keys.toml: processes
    started together on a new home each read an empty trail and each recorded a genesis (only
    the first stands; the others' events were refused as forged). Now the second reads the
    first's events and appends only what is still missing. keys.toml's own lock is taken only
    around each change of the file: a `keel keys create` meanwhile adds its key to the file
    and its own `record` (after this one) brings the trail to it."""
    with admin_lock(admin_dir):
        return _record(rt, admin_dir, reason)


def _record(rt: Runtime, admin_dir: Path, reason: str) -> list[Any]:
    keys_file = rt.settings.trust_file()
    folded = trail(rt)
    _same_admin(folded.ring, admin_dir)
    key, private = _admin(admin_dir, keys_file)
    events = changes(folded.ring, list(load_trust(keys_file).keys.values()), reason)
    if events:
        _publish(rt, key, private, events)
    # keys.toml may have gained the admin key: what this process checks and checkpoints over
    # must be the keyring just recorded
    rt.signer = load_signer(rt.settings)
    return events


def unsigned_prefix(rt: Runtime) -> dict[tuple[str, int], tuple[int, str, int]]:
    """Per tree, the leading run of unsigned records: its size, the RFC 9162 root of those
    leaves and the offset after the last of them."""
    leaves: dict[tuple[str, int], list[bytes]] = {}
    ends: dict[tuple[str, int], int] = {}
    closed: set[tuple[str, int]] = set()
    for rec in rt.log.read(list(EVENT_TOPICS)):
        if rec.tp in closed:
            continue
        if rec.sig:
            closed.add(rec.tp)
            continue
        leaves.setdefault(rec.tp, []).append(tr.leaf(rec))
        ends[rec.tp] = rec.offset + 1
    out = {}
    for tp, hashes in leaves.items():
        frontier = merkle.Frontier()
        frontier.extend(hashes)
        out[tp] = (len(hashes), frontier.root().hex(), ends[tp])
    return out


def adopt(rt: Runtime, admin_dir: Path, reason: str) -> g.UnsignedHistoryAdopted:
    """Vouch for the unsigned prefix of every tree: a signed record of its sizes and roots,
    also written to keys.toml's [[adopted]] (what the projector and verify read)."""
    if not reason.strip():
        raise KeelError("an adoption needs a reason", hint='--reason "why this history is ours"')
    from keel.audit.rebuild import refuse_while_served

    # the adoption is followed by a fold from the log (the views cleared): refused before
    # anything is recorded while a projector service holds the views
    refuse_while_served(rt.views, "`keel keys adopt`")
    with admin_lock(admin_dir):
        return _adopt(rt, admin_dir, reason)


def _adopt(rt: Runtime, admin_dir: Path, reason: str) -> g.UnsignedHistoryAdopted:
    prefix = unsigned_prefix(rt)
    if not prefix:
        raise KeelError(
            "the log holds no unsigned history to adopt",
            hint="nothing to do: every record is signed",
        )
    _record(rt, admin_dir, reason)  # the keyring first: the adoption is signed by its admin
    keys_file = rt.settings.trust_file()
    key, private = _admin(admin_dir, keys_file)
    event = g.UnsignedHistoryAdopted(
        envelope=_envelope("UnsignedHistoryAdopted"),
        trees=tuple(
            g.AdoptedTree(topic=t, partition=p, size=n, root=root)
            for (t, p), (n, root, _) in sorted(prefix.items())
        ),
        reason=reason,
    )
    _publish(rt, key, private, [event])
    with keys_lock(keys_file):
        trust = load_trust(keys_file)
        write_keys(keys_file, list(trust.keys.values()), {**trust.adopted, **prefix})
    rt.signer = load_signer(rt.settings)
    return event
