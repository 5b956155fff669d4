"""Signing in and out of the console: a login form sets the token as an HttpOnly,
SameSite=Strict cookie, which the guard accepts like the bearer header."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from keel.http_guard import cross_site
from keel.secure.tokens import TokenBook
from keel_services.audit.console.render import BASE, COOKIE, Renderer, secured


def router(r: Renderer, tokens: TokenBook) -> APIRouter:
    api = APIRouter()

    @api.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # browsers ask on every JSON page; nothing to show

    @api.get("/console")
    def console_root() -> Response:
        return secured(RedirectResponse(BASE, status_code=307))

    @api.get(BASE + "login")
    def login_form() -> Response:
        return r.login_page(None)

    @api.post(BASE + "login")
    async def login(request: Request) -> Response:
        # login CSRF: another origin must not log a browser in with the attacker's token
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = cross_site(request.scope, headers, required=False)
        if problem is not None:
            return r.login_page(problem, 403)
        given = parse_qs((await request.body()).decode("utf-8", "replace")).get("token", [""])[0]
        if tokens.enabled and tokens.find(given) is None:
            return r.login_page("wrong token", 401)
        done = RedirectResponse(BASE, status_code=303)
        done.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return secured(done)

    @api.get(BASE + "logout")
    def logout() -> Response:
        done = RedirectResponse(BASE + "login", status_code=303)
        done.delete_cookie(COOKIE, path="/")
        return secured(done)

    return api
