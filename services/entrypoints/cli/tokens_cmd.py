"""`keel audit tokens create / list / revoke`: who may ask, and who may act, over the audit API."""

from __future__ import annotations

import typer

from keel.secure.tokens import ACT, SCOPES, TokenBook, new_token
from keel.settings import Settings
from keel.signing import load_private, load_trust
from keel_services.entrypoints.cli.common import console, handled, print_json

app = typer.Typer(
    help="Audit API tokens: `read` answers questions; `act` also runs commands as one identity.",
    no_args_is_help=True,
)
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _book(s: Settings) -> TokenBook:
    return TokenBook(s.api_tokens_file())


@app.command("create")
@handled
def create(
    scope: str = typer.Option(..., "--scope", help=" or ".join(SCOPES)),
    identity: str = typer.Option(
        None, "--identity", help="the person the token acts as (required for act)"
    ),
    json_out: bool = JsonOpt,
) -> None:
    """A new token, printed once: only its SHA-256 is kept (KEEL_API_TOKENS, default
    api-tokens.json in KEEL_KEYS_DIR, outside the home). The audit service reads the file on
    every request: no restart needed."""
    s = Settings()
    record, token = new_token(scope, identity)
    book = _book(s)
    book.add(record)
    signs = ""
    if scope == ACT and identity:
        trust = load_trust(s.trust_file(), s.project)
        key = trust.active_key(identity)
        if not trust.enabled:
            signs = "unsigned (the project declares no keys)"
        elif key is not None and key.id in load_private(s.private_keys_dir()):
            signs = f"signed by {identity}'s key {key.id}"
        else:
            signs = f"signed on behalf of {identity} by the server's service keys"
    doc = {
        "id": record.id,
        "scope": record.scope,
        "identity": record.identity,
        "token": token,
        "file": str(book.path),
        "signing": signs or None,
    }
    if json_out:
        print_json(doc)
        return
    console.print(f"token {record.id} ({scope}{', as ' + identity if identity else ''}):")
    console.print(token)
    console.print(f"shown once; its digest is in {book.path}")
    if signs:
        console.print(f"what it does is recorded as {identity}'s, {signs} (on this machine)")


@app.command("list")
@handled
def list_tokens(json_out: bool = JsonOpt) -> None:
    """Every token's ID, scope, identity and creation time (never the token)."""
    book = _book(Settings())
    rows = [
        {"id": r.id, "scope": r.scope, "identity": r.identity, "created": r.created}
        for r in book.records().values()
    ]
    if json_out:
        print_json({"file": str(book.path), "tokens": rows})
        return
    for r in rows:
        console.print(f"{r['id']}  {r['scope']:<4}  {r['identity'] or '-'}  {r['created']}")
    if not rows:
        console.print(f"no tokens in {book.path}")


@app.command("revoke")
@handled
def revoke(token_id: str = typer.Argument(..., help="the token's ID (or a unique prefix)")) -> None:
    """Remove a token: the next request carrying it is refused."""
    gone = _book(Settings()).revoke(token_id)
    console.print(f"revoked {gone.id} ({gone.scope}, {gone.identity or '-'})")
