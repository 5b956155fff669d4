"""The web console of the audit service: server-rendered pages over the same views the JSON API
answers from, read-only, behind the same tokens (a login form sets one as an HttpOnly,
SameSite=Strict cookie, which the guard accepts like the bearer header). The console has no
action of its own; a cookie cannot act from another origin (the guard checks Origin), and
pages carry a Content-Security-Policy (scripts only with the page's nonce, no framing).

/console/                          what serves now, per family and environment
/console/timeline/{family}         serving bars per environment, decisions marked, time cursor
                                   (?at=T), as-of control (?as_of=R), window (?from=&to=)
/console/why/{family}/{env}        deployment -> promotion -> eval -> model -> features -> data
/console/model/{id}, /lineage/{id}, /diff?a=&b=, /event/{id}, /search?q=
/console/health                    checkpoint, counts, verification on demand, live tail (SSE)
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from keel.bootstrap import Runtime
from keel.client import Client
from keel.secure.tokens import TokenBook
from keel.views.port import ViewStore
from keel_services.audit.console import browse, health, signin
from keel_services.audit.console.render import BASE, COOKIE, Renderer, csp, secured

__all__ = ["BASE", "COOKIE", "csp", "mount", "secured"]


def mount(
    app: FastAPI,
    rt: Runtime,
    client: Client,
    store: ViewStore,
    fresh: Any,
    tokens: TokenBook,
) -> None:
    """The console's routers on `app`: signing in, the pages and the health page; every page
    first brings the views to the log's end (`fresh`)."""

    def refreshed() -> Any:
        return fresh()  # the views at the log's end before a page reads them

    fresh_first = Depends(refreshed)  # once per request, however many uses name it
    r = Renderer(rt, client)
    app.include_router(signin.router(r, tokens), include_in_schema=False)
    pages = [browse.router(r, store), health.router(r, store, fresh_first)]
    for router in pages:
        app.include_router(router, include_in_schema=False, dependencies=[fresh_first])
