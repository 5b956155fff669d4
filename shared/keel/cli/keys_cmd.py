"""`keel keys create / list`: the identities that sign events, and their keys."""

from __future__ import annotations

import base64
from typing import Any

import typer
from rich.table import Table

from keel.cli.common import console, handled, print_json
from keel.settings import Settings
from keel.signing import DEFAULT_ROLES, create_key, load_private, load_trust

app = typer.Typer(
    help="Signing keys: which identity (a service or a person) may write which events.",
    no_args_is_help=True,
)
JsonOpt = typer.Option(False, "--json", help="print JSON")


@app.command("create")
@handled
def create(
    identity: list[str] = typer.Argument(
        None, help="identities to create a key for (default: every service identity and audit)"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """A new Ed25519 key per identity: the public key goes into keys.toml beside keel.toml
    (KEEL_TRUST), the private key into KEEL_KEYS_DIR (default ~/.config/keel/keys, mode 0600).
    An identity's previous key becomes `retired`: events it signed stay valid (rotation)."""
    s = Settings()
    made = [
        create_key(name, s.trust_file(), s.private_keys_dir())
        for name in (identity or list(DEFAULT_ROLES))
    ]
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
