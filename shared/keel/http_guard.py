"""What every Keel HTTP service checks before its handlers run: the bearer token, the body size
and the content type, in that order and before a byte of the body is read.

An ASGI middleware rather than FastAPI dependencies: a dependency runs after FastAPI has read and
parsed the body, so an unauthenticated 40 MB chunked request used to be buffered and parsed
before its 401. Here the token is checked on the headers alone, a declared Content-Length over
the limit is refused at once, and a streamed (chunked) body is counted as it arrives and refused
with 413 as soon as it passes the limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may read: liveness, readiness and the API's own description.
PUBLIC = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


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
    """Wraps an ASGI app: 401 without the token (for every path outside PUBLIC), 413 over
    `max_body` bytes (declared or streamed), 415 for a body whose media type is not one of
    `media_types` (when given), 400 for an unreadable Content-Length."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
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
        self.app, self.token, self.max_body = app, token, max_body
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
        if self.token and scope["path"] not in self.public and not self._authorised(headers):
            if self.login and scope["method"] == "GET":
                home = self.login.rsplit("/", 1)[0]
                if scope["path"] == home or scope["path"].startswith(home + "/"):
                    return 303, "log in first", {"location": self.login}
            return 401, "missing or wrong bearer token", {"www-authenticate": "Bearer"}
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

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token
        if bearer_ok(headers.get("authorization", ""), self.token):
            return True
        if self.cookie is None or "cookie" not in headers:
            return False
        try:
            jar = SimpleCookie(headers["cookie"])
        except CookieError:
            return False
        given = jar.get(self.cookie)
        return given is not None and bearer_ok(f"Bearer {given.value}", self.token)

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


async def _respond(send: Send, status: int, detail: str, extra: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    if status == 413:  # the rest of the body is never read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
