"""Who may ask and who may act over HTTP: scoped API tokens, stored hashed.

A token has a scope: `read` answers every GET; `act` also runs commands (approve, reject,
evaluate, deploy, roll back) and belongs to one identity, the person recorded on what it does.
The tokens file holds each token's ID, scope, identity and SHA-256, never the token itself
(tokens are 256 random bits, so a plain digest cannot be reversed). It lives beside the private
keys (KEEL_KEYS_DIR), not in KEEL_HOME: an act token may make the server sign as its person,
so whoever can write the home must not be able to mint one. KEEL_API_TOKENS names another file.

KEEL_API_TOKEN, the single token of earlier versions, is a `read` token for the audit API: the
console logs in with it and cannot change anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from keel.errors import ConfigError, KeelError

READ, ACT = "read", "act"
SCOPES = (READ, ACT)
PREFIX = "keel_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TOKEN = re.compile(r"^keel_(read|act)_([0-9a-f]{12})_[A-Za-z0-9_-]{20,}$")


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: the token's ID, scope and identity (None for read tokens that
    name nobody), and how the token came (`bearer` header or console `cookie`)."""

    token_id: str
    scope: str
    identity: str | None = None
    via: str = "bearer"

    def may(self, scope: str) -> bool:
        return self.scope == ACT or scope == READ


@dataclass(frozen=True)
class TokenRecord:
    id: str
    scope: str
    identity: str | None
    sha256: str
    created: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def needed_scope(method: str) -> str:
    """GET/HEAD/OPTIONS read; anything that may change something needs act."""
    return READ if method in ("GET", "HEAD", "OPTIONS") else ACT


def new_token(scope: str, identity: str | None) -> tuple[TokenRecord, str]:
    """A fresh token and its record; the token is shown once and never stored."""
    if scope not in SCOPES:
        raise KeelError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if scope == ACT and not identity:
        raise KeelError(
            "an act token belongs to one identity",
            hint="give --identity NAME (the person recorded on what the token does)",
        )
    if identity is not None and not _NAME.match(identity):
        raise KeelError(
            f"identity {identity[:80]!r} is not a name",
            hint="letters, digits and _ . @ - (up to 64), starting with a letter or digit",
        )
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{scope}_{token_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return TokenRecord(token_id, scope, identity, digest(token), created), token


class TokenBook:
    """The tokens a server accepts: the file's (re-read when it changes, so a revocation takes
    effect on the next request) and an optional legacy read token."""

    def __init__(self, path: Path | None, legacy_read: str | None = None) -> None:
        self.path, self.legacy = path, legacy_read or None
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, TokenRecord] = {}

    @property
    def enabled(self) -> bool:
        """Any token configured: then every non-public request needs one."""
        return bool(self.legacy) or bool(self.records())

    def records(self) -> dict[str, TokenRecord]:
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._records = None, {}
            return self._records
        # every write replaces the file (a new inode): a change is seen even within one mtime tick
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._records = read_records(self.path)
            self._stamp = stamp
        return self._records

    def find(self, given: str) -> Principal | None:
        """The principal of a presented token, compared in constant time; None if unknown."""
        given = given.strip()
        if not given:
            return None
        m = _TOKEN.match(given)
        if m:
            rec = self.records().get(m.group(2))
            if rec is not None and hmac.compare_digest(digest(given), rec.sha256):
                return Principal(rec.id, rec.scope, rec.identity)
            return None
        if self.legacy and hmac.compare_digest(given.encode(), self.legacy.encode()):
            return Principal("KEEL_API_TOKEN", READ)
        return None

    # -- writing the file (the CLI) -----------------------------------------------------------
    def add(self, record: TokenRecord) -> None:
        self._write({**self.records(), record.id: record})

    def revoke(self, token_id: str) -> TokenRecord:
        records = self.records()
        found = [r for r in records.values() if r.id.startswith(token_id.lower())]
        if len(found) != 1:
            raise KeelError(
                f"{'no' if not found else 'more than one'} token with ID {token_id!r}",
                hint="see `keel audit tokens list`",
            )
        self._write({k: r for k, r in records.items() if k != found[0].id})
        return found[0]

    def _write(self, records: dict[str, TokenRecord]) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {"tokens": [asdict(r) for r in sorted(records.values(), key=lambda r: r.created)]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2)
        os.replace(tmp, self.path)  # a server reading it sees the old file or the new one


def read_records(path: Path) -> dict[str, TokenRecord]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        records = [TokenRecord(**r) for r in doc.get("tokens", [])]
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path} is not a valid tokens file: {exc}",
            hint="it is written by `keel audit tokens create`; remove it and create the tokens "
            "again",
        ) from exc
    bad = [r.id for r in records if r.scope not in SCOPES or (r.scope == ACT and not r.identity)]
    if bad:
        raise ConfigError(
            f"{path}: tokens {', '.join(bad)} have no valid scope or an act token no identity",
            hint="revoke them (`keel audit tokens revoke ID`) and create new ones",
        )
    return {r.id: r for r in records}
