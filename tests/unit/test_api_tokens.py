"""Scoped API tokens (keel.secure.tokens) and the guard's origin check, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.errors import KeelError
from keel.http_guard import cross_site
from keel.secure.tokens import ACT, READ, TokenBook, needed_scope, new_token

pytestmark = pytest.mark.unit


def test_tokens_are_found_by_digest_with_their_scope_and_person(tmp_path: Path) -> None:
    book = TokenBook(tmp_path / "t.json", legacy_read="legacy")
    rec, token = new_token(ACT, "alice")
    book.add(rec)
    found = book.find(token)
    assert found is not None and (found.scope, found.identity) == (ACT, "alice")
    assert found.may(READ) and found.may(ACT)
    legacy = book.find("legacy")
    assert legacy is not None and legacy.scope == READ and not legacy.may(ACT)
    assert book.find(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert book.find("") is None and book.find("keel_act_000000000000_" + "x" * 40) is None
    stored = (tmp_path / "t.json").read_text()
    assert token not in stored and json.loads(stored)["tokens"][0]["identity"] == "alice"
    assert (tmp_path / "t.json").stat().st_mode & 0o077 == 0


def test_a_revoked_token_is_refused_by_a_book_already_open(tmp_path: Path) -> None:
    server, cli = TokenBook(tmp_path / "t.json"), TokenBook(tmp_path / "t.json")
    rec, token = new_token(READ, None)
    cli.add(rec)
    assert server.enabled and server.find(token) is not None
    cli.revoke(rec.id[:6])
    assert server.find(token) is None and not server.enabled


def test_an_act_token_needs_a_person() -> None:
    with pytest.raises(KeelError, match="one identity"):
        new_token(ACT, None)
    with pytest.raises(KeelError, match="not a name"):
        new_token(ACT, "alice (via token)")
    with pytest.raises(KeelError, match="scope"):
        new_token("admin", "alice")


def test_methods_that_change_need_act() -> None:
    assert needed_scope("GET") == needed_scope("HEAD") == READ
    assert needed_scope("POST") == needed_scope("DELETE") == ACT


def test_origin_must_be_this_server() -> None:
    scope = {"scheme": "http"}
    own = {"host": "127.0.0.1:8081"}
    assert cross_site(scope, {**own, "origin": "http://127.0.0.1:8081"}) is None
    assert cross_site(scope, {**own, "referer": "http://127.0.0.1:8081/console/"}) is None
    for bad in (
        {},  # a cookie alone
        {"origin": "http://127.0.0.1:9999"},  # same site, another port
        {"origin": "null"},
        {"referer": "http://evil.example/x"},
        {"origin": "http://127.0.0.1:8081", "sec-fetch-site": "same-site"},
    ):
        assert cross_site(scope, {**own, **bad}) is not None, bad
    assert cross_site(scope, own, required=False) is None  # the login form from a script
