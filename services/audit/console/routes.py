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

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from keel.audit import view_queries as vq
from keel.audit.summary import summarize
from keel.audit.verify_run import checkpoints_tail
from keel.bootstrap import Runtime
from keel.client import Client
from keel.codec import CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.http_guard import cross_site
from keel.secure.tokens import TokenBook
from keel.timeparse import parse_time
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore
from keel_services.audit.console import pages

BASE = "/console/"
COOKIE = "keel_console"
TAIL_BACKLOG = 30  # events a new live tail starts with
TAIL_SECONDS = 300.0  # one stream's life; the browser's EventSource reconnects by itself
MAX_DEPTH = 6


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


def mount(
    app: FastAPI,
    rt: Runtime,
    client: Client,
    store: ViewStore,
    fresh: Any,
    tokens: TokenBook,
) -> None:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keel_services.audit.console", "templates"), autoescape=True
    )
    env.globals.update(base=BASE, num=_num, signed=_signed)

    def refreshed() -> Any:
        return fresh()  # the views at the log's end before a page reads them

    fresh_first = Depends(refreshed)  # once per request, however many uses name it

    def get(path: str) -> Any:
        return app.get(BASE + path, include_in_schema=False, dependencies=[fresh_first])

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = env.get_template(name).render(families=client.families(), nonce=nonce, **ctx)
        response = HTMLResponse(html, status_code=status)
        secured(response, nonce)
        return response

    def login_page(error: str | None, status: int = 200) -> Response:
        html = env.get_template("login.html.j2").render(families=[], error=error)
        return secured(HTMLResponse(html, status_code=status))

    def fail(message: str, status: int = 422, hint: str = "") -> HTMLResponse:
        return page("error.html.j2", status=status, message=message, hint=hint)

    def refused(exc: KeelError, status: int = 422) -> HTMLResponse:
        return fail(str(exc), status, exc.hint)

    def when(text: str | None) -> datetime | None:
        return parse_time(text)[0] if text else None

    def envs_of(family: str) -> list[str]:
        try:
            return client.project().family(family).environments
        except KeelError:
            return []

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # browsers ask on every JSON page; nothing to show

    @app.get("/console", include_in_schema=False)
    def console_root() -> Response:
        return secured(RedirectResponse(BASE, status_code=307))

    @app.get(BASE + "login", include_in_schema=False)
    def login_form() -> Response:
        return login_page(None)

    @app.post(BASE + "login", include_in_schema=False)
    async def login(request: Request) -> Response:
        # login CSRF: another origin must not log a browser in with the attacker's token
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = cross_site(request.scope, headers, required=False)
        if problem is not None:
            return login_page(problem, 403)
        given = parse_qs((await request.body()).decode("utf-8", "replace")).get("token", [""])[0]
        if tokens.enabled and tokens.find(given) is None:
            return login_page("wrong token", 401)
        done = RedirectResponse(BASE, status_code=303)
        done.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return secured(done)

    @app.get(BASE + "logout", include_in_schema=False)
    def logout() -> Response:
        done = RedirectResponse(BASE + "login", status_code=303)
        done.delete_cookie(COOKIE, path="/")
        return secured(done)

    @get("")
    def home() -> HTMLResponse:
        overview = []
        for f in client.families():
            serving = {}
            for e in envs_of(f):
                serving[e] = vq.serving_at(store, f, e, datetime.now(UTC))["serving"]
            overview.append(
                {
                    "family": f,
                    "serving": serving,
                    "models": len(client.models(f, limit=50)),
                    "datasets": len(client.datasets(f, 0, 50)),
                }
            )
        return page("home.html.j2", overview=overview)

    @get("timeline/{family}")
    def timeline(
        family: str,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        at: str | None = None,
        as_of: str | None = None,
    ) -> HTMLResponse:
        try:
            if family not in client.families():
                return fail(f"no family {family}", 404, f"families: {', '.join(client.families())}")
            envs = envs_of(family)
            lo, hi = pages.default_window(store, family, envs)
            lo, hi = when(start) or lo, when(end) or hi
            if hi <= lo:
                return fail("the window ends before it starts", hint="give from earlier than to")
            data = pages.timeline(store, family, envs, lo, hi, when(at), when(as_of))
        except KeelError as exc:
            return refused(exc)
        return page(
            "timeline.html.j2",
            t=data,
            g=pages.svg_timeline(data),
            bars_cap=pages.BARS,
            marks_cap=pages.MARKS,
        )

    @get("why/{family}/{env_name}")
    def why(family: str, env_name: str, at: str | None = None, as_of: str | None = None) -> Any:
        try:
            t = when(at) or datetime.now(UTC)
            data = pages.why(store, rt.artifacts.read_bytes, family, env_name, t, when(as_of))
        except KeelError as exc:
            return refused(exc)
        return page("why.html.j2", w=data)

    @get("model/{model}")
    def model(model: str) -> Any:
        try:
            mid = client.resolve(model)
        except KeelError as exc:
            return refused(exc, 404)
        return page("model.html.j2", m=pages.model_page(store, mid))

    @get("lineage/{artifact}")
    def lineage(artifact: str, depth: int = 2) -> Any:
        depth = max(1, min(MAX_DEPTH, depth))
        try:
            aid = client.resolve(artifact)
            root = SimpleNamespace(id=aid, kind=rt.artifacts.info(aid).kind, depth=0, via=None)
            nodes = [root, *(n for n in client.lineage(aid, "both", depth) if n.id != aid)]
        except KeelError as exc:
            return refused(exc, 404)
        return page("lineage.html.j2", g=pages.lineage_graph(nodes, aid), depth=depth)

    @get("diff")
    def diff(a: str | None = None, b: str | None = None) -> Any:
        if not a or not b:
            return page("diff.html.j2", a=a, b=b, d=None, error=None)
        try:
            found = client.diff(a, b, top=8).model_dump(mode="json")
        except KeelError as exc:
            return page("diff.html.j2", a=a, b=b, d=None, error=str(exc), status=404)
        return page("diff.html.j2", a=a, b=b, d=found, error=None)

    @get("event/{event_id}")
    def event(event_id: str) -> Any:
        doc = store.get(f"event:{event_id}") or store.get(f"deployment:{event_id}")
        doc = doc or store.get(f"decision:{event_id}")
        if doc is None:
            return fail(
                f"no event {event_id} in the views",
                404,
                "check the ID; the console keeps deployments, decisions and pipeline events",
            )
        kind = doc.get("type") or doc.get("decision") or doc.get("kind") or "event"
        body = json.dumps(doc, indent=2, sort_keys=True, default=str)
        signed_by = doc.get("signed_by")  # adopted unsigned history says so (decision 0022)
        return page("event.html.j2", kind=kind, event_id=event_id, body=body, signed_by=signed_by)

    @get("search")
    def search(q: str = "") -> Any:
        families = client.families()
        hits = pages.search(store, client.resolve, q, families, {f: envs_of(f) for f in families})
        return page("search.html.j2", q=q, hits=hits)

    @get("health")
    def health(verify: int = 0, freshness: Any = fresh_first) -> Any:
        report = client.verify().model_dump(mode="json") if verify else None
        last = checkpoints_tail(rt)
        checkpoint = (
            {
                "at": last.envelope.occurred_at.isoformat(),
                "event_id": last.envelope.event_id,
                "trees": [t.note for t in last.trees],
            }
            if last is not None
            else None
        )
        return page(
            "health.html.j2",
            h=pages.health(store),
            v=report,
            checkpoint=checkpoint,
            freshness=freshness,
        )

    @get("tail")
    def tail(request: Request) -> StreamingResponse:
        stream = StreamingResponse(_tail(rt, request), media_type="text/event-stream")
        return secured(stream)


def _line(rt: Runtime, rec: Any) -> str:
    try:
        event = decode_event(rt.codec, rec.value)
    except CodecError as exc:
        return f"{rec.topic}/{rec.offset} UNDECODABLE: {exc}"
    env = event.envelope
    when = env.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} {env.event_type} {env.subject[:24]} {summarize(event)}"


async def _tail(rt: Runtime, request: Request, seconds: float = TAIL_SECONDS) -> AsyncIterator[str]:
    """The newest TAIL_BACKLOG events, then new ones as they are recorded, for `seconds` or
    until the browser goes away; reads from positions (no consumer group), so watching moves
    nobody's offsets. Log reads run in a worker thread; the wait between them is async, so an
    open tail never holds a thread or the server's shutdown."""
    topics = list(EVENT_TOPICS)

    def backlog() -> tuple[dict[Any, int], list[str]]:
        # Each topic's newest records on their own, capped: offsets need not be dense (the
        # embedded log numbers records across topics), so "end - N" of a quiet topic can lie
        # far back, and one read from there across every topic would walk the whole log.
        ends = rt.log.end_offsets(topics)
        recs = [
            rec
            for tp, end in ends.items()
            for rec in rt.log.read([tp[0]], {tp: max(0, end - TAIL_BACKLOG)}, TAIL_BACKLOG)
        ]
        recs.sort(key=lambda r: r.timestamp_ms)
        return dict(ends), [_line(rt, r) for r in recs[-TAIL_BACKLOG:]]

    def newer(positions: dict[Any, int]) -> list[str]:
        lines = []
        for rec in rt.log.read(topics, positions):
            positions[rec.tp] = rec.offset + 1
            lines.append(_line(rt, rec))
        return lines

    positions, lines = await asyncio.to_thread(backlog)
    for line in lines:
        yield f"data: {line}\n\n"
    yield "event: status\ndata: caught up: new events appear below as they are recorded\n\n"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await request.is_disconnected():
        lines = await asyncio.to_thread(newer, positions)
        for line in lines:
            yield f"data: {line}\n\n"
        if not lines:
            yield ": idle\n\n"  # a comment: keeps proxies from closing the stream
            await asyncio.sleep(0.5)
