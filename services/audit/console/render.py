"""What every console page is drawn with: the templates, the security headers, the page, error
and login renderers, and the few helpers the pages share."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, TypeVar

from fastapi import Response
from fastapi.responses import HTMLResponse

from keel.bootstrap import Runtime
from keel.client import Client
from keel.errors import KeelError
from keel.timeparse import parse_time

BASE = "/console/"
COOKIE = "keel_console"


def csp(nonce: str | None) -> str:
    """The pages' policy: their own inline scripts by nonce and nothing else; styles inline
    (the templates and the SVG charts use style attributes, which cannot carry a nonce); no
    framing by anyone (clickjacking), forms and connections to this origin only."""
    scripts = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


R = TypeVar("R", bound=Response)


def secured(response: R, nonce: str | None = None) -> R:
    response.headers["content-security-policy"] = csp(nonce)
    response.headers["x-frame-options"] = "DENY"  # browsers without frame-ancestors
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    return response


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def _signed(x: Any) -> str:
    return "-" if x is None else f"{x:+.4f}"


class Renderer:
    def __init__(self, rt: Runtime, client: Client) -> None:
        import jinja2

        self.rt, self.client = rt, client
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("keel_services.audit.console", "templates"),
            autoescape=True,
        )
        self.env.globals.update(base=BASE, num=_num, signed=_signed)

    def page(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = self.env.get_template(name).render(
            families=self.client.families(), nonce=nonce, **ctx
        )
        response = HTMLResponse(html, status_code=status)
        secured(response, nonce)
        return response

    def login_page(self, error: str | None, status: int = 200) -> Response:
        html = self.env.get_template("login.html.j2").render(families=[], error=error)
        return secured(HTMLResponse(html, status_code=status))

    def fail(self, message: str, status: int = 422, hint: str = "") -> HTMLResponse:
        return self.page("error.html.j2", status=status, message=message, hint=hint)

    def refused(self, exc: KeelError, status: int = 422) -> HTMLResponse:
        return self.fail(str(exc), status, exc.hint)

    def envs_of(self, family: str) -> list[str]:
        try:
            return self.client.project().environments(family)  # MLflow families too
        except KeelError:
            return []


def when(text: str | None) -> datetime | None:
    return parse_time(text)[0] if text else None
