"""`keel keys create / retire / record / adopt / list`: the identities that sign events, their
keys, and the keyring the trail records (decision 0022: every change signed by the admin key,
KEEL_ADMIN_DIR, default ~/.config/keel/admin; never in KEEL_HOME)."""

from __future__ import annotations

import base64
from typing import Any

import typer
from rich.table import Table

from keel.errors import KeelError
from keel.settings import Settings
from keel.signing import (
    ADMIN_IDENTITY,
    DEFAULT_ROLES,
    PublicKey,
    create_key,
    default_admin_dir,
    keys_lock,
    load_private,
    load_trust,
    write_keys,
)
from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.container import build

app = typer.Typer(
    help="Signing keys: which identity (a service or a person) may write which events.",
    no_args_is_help=True,
)
JsonOpt = typer.Option(False, "--json", help="print JSON")
ReasonOpt = typer.Option("", "--reason", help="why: recorded on the signed keyring event")


def _record(reason: str) -> dict[str, Any]:
    """Bring the trail's keyring to keys.toml, signed by the admin; say whether the log holds
    unsigned history that only an explicit adoption keeps (issue 33, item 9)."""
    from keel import keyring_admin

    with build() as app:
        rt = app.rt
        events = keyring_admin.record(rt, default_admin_dir(), reason)
        unsigned = sum(a[0] for a in keyring_admin.unsigned_prefix(rt).values())
        adopted = sum(a[0] for a in load_trust(rt.settings.trust_file()).adopted.values())
    return {
        "recorded": [f"{e.EVENT_TYPE} {getattr(e, 'key_id', '')}".strip() for e in events],
        "admin_dir": str(default_admin_dir()),
        "unsigned_history": unsigned,
        "unadopted": max(0, unsigned - adopted),
    }


def _say_recorded(doc: dict[str, Any]) -> None:
    for line in doc["recorded"]:
        console.print(f"trail: {line} (signed by {ADMIN_IDENTITY})", highlight=False)
    if doc["unadopted"]:
        console.print(
            f"the log holds {doc['unadopted']} unsigned events written before the project had "
            "keys: verify calls them forged and they leave every answer until you adopt them: "
            '`keel keys adopt --reason "..."` (the admin key signs the root of that history)',
            highlight=False,
        )


@app.command("create")
@handled
def create(
    identity: list[str] = typer.Argument(
        None, help="identities to create a key for (default: every service identity and audit)"
    ),
    reason: str = ReasonOpt,
    json_out: bool = JsonOpt,
) -> None:
    """A new Ed25519 key per identity: the public key goes into keys.toml beside keel.toml
    (KEEL_TRUST), the private key into KEEL_KEYS_DIR (default ~/.config/keel/keys, mode 0600).
    An identity's previous key becomes `retired`: events it signed stay valid (rotation)."""
    s = Settings()
    if ADMIN_IDENTITY in (identity or ()):
        raise KeelError(
            "the admin key is not made with the services' keys",
            hint=f"it is created in {default_admin_dir()} (KEEL_ADMIN_DIR) on first use",
        )
    made = [
        create_key(name, s.trust_file(), s.private_keys_dir())
        for name in (identity or list(DEFAULT_ROLES))
    ]
    trail = _record(reason or "keel keys create")
    doc = [
        {"identity": k.identity, "id": k.id, "public": base64.b64encode(k.public).decode()}
        for k in made
    ]
    if json_out:
        print_json(
            {
                "keys_file": str(s.trust_file()),
                "private_dir": str(s.private_keys_dir()),
                "created": doc,
                **trail,
            }
        )
        return
    for k in doc:
        console.print(f"{k['identity']}: key {k['id']}", highlight=False)
    console.print(
        f"public keys -> {s.trust_file()} (commit it); private keys -> {s.private_keys_dir()} "
        "(keep them out of the repo and KEEL_HOME)",
        highlight=False,
    )
    _say_recorded(trail)


@app.command("retire")
@handled
def retire(
    key: str = typer.Argument(..., help="the key ID (keel keys list)"),
    revoke: bool = typer.Option(
        False, "--revoke", help="revoked: nothing it signed verifies any more (a stolen key)"
    ),
    reason: str = ReasonOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Retire a key (what it signed stays valid) or revoke it; the trail records it."""
    s = Settings()
    status = "revoked" if revoke else "retired"
    # read and written back under keys.toml's lock: a key another process adds meanwhile is kept
    with keys_lock(s.trust_file()):
        trust = load_trust(s.trust_file())
        k = trust.keys.get(key)
        if k is None:
            raise KeelError(f"keys.toml lists no key {key}", hint="see `keel keys list`")
        keys = [
            PublicKey(x.identity, x.id, x.public, status, x.created) if x.id == key else x
            for x in trust.keys.values()
        ]
        write_keys(s.trust_file(), keys, trust.adopted)
    trail = _record(reason or f"keel keys retire {key}")
    if json_out:
        print_json({"key": key, "status": status, **trail})
        return
    console.print(f"{k.identity}: key {key} {status}", highlight=False)
    _say_recorded(trail)


@app.command("record")
@handled
def record(reason: str = ReasonOpt, json_out: bool = JsonOpt) -> None:
    """Record in the trail, signed by the admin key, what keys.toml holds and the trail lacks
    (a home made before the keyring was part of the trail)."""
    trail = _record(reason or "keel keys record")
    if json_out:
        print_json(trail)
        return
    if not trail["recorded"]:
        console.print("the trail already records every key in keys.toml")
    _say_recorded(trail)


@app.command("adopt")
@handled
def adopt(
    reason: str = typer.Option(..., "--reason", help="why this unsigned history is the project's"),
    json_out: bool = JsonOpt,
) -> None:
    """Adopt the unsigned history a project wrote before it had keys: the admin key signs the
    Merkle root of every tree's unsigned prefix; those events are then answered and verified
    as "adopted unsigned history" instead of being called forged."""
    from keel import keyring_admin
    from keel.audit import rebuild
    from keel.audit.projectors import projector_for
    from keel.views.port import ViewStore

    with build() as app:
        rt = app.rt
        event = keyring_admin.adopt(rt, default_admin_dir(), reason)
        # the views were folded before the adoption: fold them again so every answer built
        # from that history labels it "adopted unsigned history" (and verify's fresh fold agrees),
        # as `keel audit rebuild` does (decision 0034): refused while a service holds them, and
        # SQLite views replaced in one transaction once the fold is done (a killed adopt leaves
        # them as they were)

        def fold(views: ViewStore) -> object:
            projector = projector_for(rt, views)
            projector.batch_size = rebuild.REBUILD_BATCH
            return projector.run()

        rebuild.fold_afresh(
            rt.views, fold, "`keel keys adopt`", memory_mb=rt.settings.rebuild_memory_mb
        )
    trees = {f"{t.topic}/{t.partition}": t.size for t in event.trees}
    if json_out:
        print_json({"adopted": trees, "reason": reason, "event_id": event.envelope.event_id})
        return
    console.print(
        f"adopted unsigned history: {sum(trees.values())} events in {len(trees)} trees, "
        f"signed by {ADMIN_IDENTITY} (reason: {reason})",
        highlight=False,
        markup=False,
    )


@app.command("list")
@handled
def list_keys(json_out: bool = JsonOpt) -> None:
    """Every key in keys.toml: identity, status, whether this process holds its private half,
    and the event types the identity may write."""
    s = Settings()
    trust = load_trust(s.trust_file(), s.project)
    private = load_private(s.private_keys_dir())
    rows: list[dict[str, Any]] = [
        {
            "identity": k.identity,
            "id": k.id,
            "status": k.status,
            "created": k.created,
            "private_here": k.id in private,
            "may_write": sorted(trust.roles.get(k.identity, ())),
        }
        for k in sorted(trust.keys.values(), key=lambda k: (k.identity, k.created))
    ]
    if json_out:
        print_json({"keys_file": str(s.trust_file()), "keys": rows})
        return
    if not rows:
        console.print(f"no keys in {s.trust_file()}: create them with `keel keys create`")
        return
    t = Table(title=str(s.trust_file()))
    for col in ("identity", "key", "status", "private here", "may write"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(
            r["identity"],
            r["id"],
            r["status"],
            "yes" if r["private_here"] else "no",
            ", ".join(r["may_write"]),
        )
    console.print(t)
