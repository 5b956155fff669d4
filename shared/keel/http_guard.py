"""What every Keel HTTP service checks before its handlers run: the bearer token, the body size
and the content type, in that order and before a byte of the body is read.

An ASGI middleware rather than FastAPI dependencies: a dependency runs after FastAPI has read and
parsed the body, so an unauthenticated 40 MB chunked request used to be buffered and parsed
before its 401. Here the token is checked on the headers alone, a declared Content-Length over
the limit is refused at once, and a streamed (chunked) body is counted as it arrives and refused
with 413 as soon as it passes the limit.

Tokens may carry a scope (keel.secure.tokens): a request that may change something needs an
`act` token, and one authenticated by a browser's cookie must come from the server's own origin
(a same-site page on another port, or any other page, cannot ride the console's cookie).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol
from urllib.parse import urlsplit

from keel.secure.tokens import ACT, Principal, needed_scope

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read: liveness, readiness and the API's own description.
PUBLIC = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class Tokens(Protocol):
    """What the guard asks of a set of tokens (keel.secure.tokens.TokenBook)."""

    @property
    def enabled(self) -> bool: ...

    def find(self, given: str) -> Principal | None: ...


class _One:
    """A service's single token (ingest, serve): whoever holds it may do anything there."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def find(self, given: str) -> Principal | None:
        ok = self.token and hmac.compare_digest(given.strip().encode(), self.token.encode())
        return Principal("token", ACT) if ok else None


def cross_site(scope: Scope, headers: dict[str, str], required: bool = True) -> str | None:
    """Why a browser's request did not come from this server's own origin, or None. Origin (else
    Referer) must be exactly scheme://host of the request: SameSite=Strict cookies still ride
    requests from same-site pages (another port on the same host), so the site is not enough.
    required=False lets a request with neither header through (not a browser's POST)."""
    own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:40]})"
    origin = headers.get("origin")
    if origin is None and headers.get("referer"):
        parts = urlsplit(headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None:
        if not required:
            return None
        return (
            "cross-site request refused: a request authenticated by the console's cookie must "
            f"carry an Origin header of {own}; scripts send the token as Authorization: Bearer"
        )
    if origin.lower().rstrip("/") != own:
        return f"cross-site request refused: Origin {origin[:100]!r} is not this server ({own})"
    return None


def bearer_ok(header: str, token: str) -> bool:
    """RFC 7235: the auth scheme is case-insensitive; the credentials are compared in constant
    time."""
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


class Guard:
    """Wraps an ASGI app: 401 without the token (for every path outside PUBLIC), 403 for a
    token whose scope does not allow the method or a cookie-authenticated change from another
    origin (the principal is left in scope["state"]["principal"]), 413 over
    `max_body` bytes (declared or streamed), 415 for a body whose media type is not one of
    `media_types` (when given), 400 for an unreadable Content-Length."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        tokens: Tokens | None = None,
        max_body: int,
        media_types: Iterable[str] = (),
        hint_413: str = "",
        cookie: str | None = None,
        public: Iterable[str] = (),
        login: str | None = None,
    ) -> None:
        """cookie: a cookie that may carry the token instead of the header (a browser
        console); public: more paths anyone may reach (its login form); login: where a browser
        without the token is sent (303) from GET pages under the login's directory."""
        self.app, self.max_body = app, max_body
        self.tokens: Tokens = tokens if tokens is not None else _One(token)
        self.media_types = frozenset(media_types)
        self.hint_413 = hint_413
        self.cookie = cookie
        self.public = PUBLIC | frozenset(public)
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        if scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        body = await self._read_limited(receive, send)
        if body is None:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:  # after the body: whatever the server says next (a disconnect)
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _refusal(
        self, scope: Scope, headers: dict[str, str]
    ) -> tuple[int, str, dict[str, str]] | None:
        if self.tokens.enabled and scope["path"] not in self.public:
            principal = self._principal(headers)
            if principal is None:
                if self.login and scope["method"] == "GET":
                    home = self.login.rsplit("/", 1)[0]
                    if scope["path"] == home or scope["path"].startswith(home + "/"):
                        return 303, "log in first", {"location": self.login}
                return 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"}
            scope.setdefault("state", {})["principal"] = principal
            need = needed_scope(scope["method"])
            if not principal.may(need):
                return 403, _scope_refusal(principal, need, scope), {}
            if principal.via == "cookie" and need == ACT:
                problem = cross_site(scope, headers)
                if problem is not None:
                    return 403, problem, {}
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return 400, f"Content-Length {declared[:40]!r} is not a byte count", {}
            if int(declared) > self.max_body:
                return 413, self._too_large(int(declared)), {}
        if self.media_types and scope["method"] in WITH_BODY:
            given = media_type(headers.get("content-type", ""))
            if given not in self.media_types:
                return (
                    415,
                    f"content type {given or '(none)'!r} is not accepted; send "
                    + " or ".join(sorted(t for t in self.media_types if t)),
                    {},
                )
        return None

    def _principal(self, headers: dict[str, str]) -> Principal | None:
        scheme, _, given = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.tokens.find(given)  # a wrong header is wrong, whatever the cookie says
        if self.cookie is None or "cookie" not in headers:
            return None
        try:
            jar = SimpleCookie(headers["cookie"])
        except CookieError:
            return None
        found = jar.get(self.cookie)
        principal = self.tokens.find(found.value) if found is not None else None
        if principal is None:
            return None
        return Principal(principal.token_id, principal.scope, principal.identity, via="cookie")

    async def _read_limited(self, receive: Receive, send: Send) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _respond(send, 413, self._too_large(size, streamed=True), {})
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, size: int, streamed: bool = False) -> str:
        what = "more bytes streamed" if streamed else f"{size:,} bytes declared"
        text = f"body too large: {what} than the limit of {self.max_body:,}"
        return f"{text}; {self.hint_413}" if self.hint_413 else text


def _scope_refusal(principal: Principal, need: str, scope: Scope) -> str:
    return (
        f"this token's scope is {principal.scope}; {scope['method']} {scope['path']} needs a "
        f"token of scope {need} (one identity's: `keel audit tokens create --scope {need} "
        "--identity NAME`, sent as Authorization: Bearer)"
    )


async def _respond(send: Send, status: int, detail: str, extra: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    if status == 413:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
