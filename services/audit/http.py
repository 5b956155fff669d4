"""The audit service's HTTP JSON API: the same questions as `keel audit …`, read from the views.

GET /v1/serving/{family}/{env}?at=T&as_of=R  the model serving at T as known at R
GET /v1/why/{family}/{env}?at=T&as_of=R      deployment -> promotion -> eval -> model -> data
GET /v1/models/{model}/why-promoted?over=OTHER&env=E   one environment's promotion; without
    env, every environment the model was promoted to ({"environments": [...]}), as the CLI
GET /v1/models/{a}/diff/{b}?top=5
GET /v1/registry/{family}?offset=0&limit=50  (paginated, limit <= 1000)
GET /v1/report/{family}?from=T1&to=T2&env=E&format=html|pdf|json   the review pack
GET /v1/families, /v1/families/{family}/models?env=E, .../datasets, .../deployments/{env},
    .../pending, /v1/artifacts?kind=K          (what exists, newest first, paginated)
POST /v1/models/{model}/approve|reject|evaluate|deploy, /v1/families/{family}/rollback
    (JSON bodies) need a token of scope `act` (`keel audit tokens create --scope act
    --identity NAME`): they record NAME as the actor, how NAME was authenticated, and are signed
    by NAME's key where the server holds it, else on NAME's behalf (services/audit/acting.py);
    the answer's `authenticated` says which. A `read` token (KEEL_API_TOKEN is one) gets 403.
Models and artifacts may be given as unique ID prefixes (>= 8 hex characters), as on the CLI.
OpenAPI at /docs. When any token is configured, every /v1 endpoint needs `Authorization: Bearer`.
Every answer carries `freshness`: the log offsets not yet folded (`lag`), how old that check is
(`checked_ms_ago`) and the views' tracking positions. On Kafka the API answers from its own
replica of the views (a SQLite file under KEEL_HOME/replicas, folded from the log by a watcher
process, which wakes when records arrive).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from keel import telemetry
from keel.audit import view_queries as vq
from keel.audit.anchors import default_witness
from keel.audit.freshness import Freshness, FreshViews, WatchedViews, lag
from keel.audit.resets import TRUST_RESETS
from keel.audit.resets import latest as latest_reset
from keel.bootstrap import Runtime
from keel.client import Client
from keel.errors import KeelError
from keel.http_guard import Guard
from keel.secure.tokens import ACT, TokenBook
from keel.timeparse import parse_time
from keel.topics import EVENT_TOPICS
from keel.views.sqlite import SqliteViewStore
from keel_services.audit import acting

MAX_BODY = 64 << 10
MAX_OFFSET = 1 << 53  # beyond any registry; SQLite and JSON numbers stay exact below it


def create_app(
    rt: Runtime, token: str | None = None, refresh: bool = True, tokens: TokenBook | None = None
) -> FastAPI:
    """token: a read token (KEEL_API_TOKEN); tokens: the scoped tokens (default: the file
    settings name, keel.secure.tokens), which alone may act.

    refresh: keep the views at the log's end and answer from them: on the embedded log the
    views file itself (FreshViews, checked per request); on a remote log (Kafka) a replica of
    the views in a local file, folded by a watcher process (WatchedViews). False: answer from
    the configured views as they are (another process folds), saying how far behind they
    are."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if isinstance(views, WatchedViews):
            views.close()  # the watcher would outlive a server stopped inside a longer process

    app = FastAPI(title="Keel audit", version="1", description=__doc__, lifespan=lifespan)
    book = tokens or TokenBook(rt.settings.api_tokens_file(), legacy_read=token)
    remote = bool(getattr(rt.log, "remote", False))
    views: FreshViews | WatchedViews | None = None
    store = rt.views  # where answers read
    if refresh and remote:
        replica = replica_path(rt)
        views = WatchedViews(rt.settings, replica)
        store = SqliteViewStore(replica)
    elif refresh:
        views = FreshViews(
            rt.log,
            rt.views,
            rt.codec,
            rt.checkpoint_signer,
            rt.trust,
            witness=default_witness(rt),
        )

    client = Client.over(rt, views=store)  # the answers, over the kept-fresh views

    def when(at: str | None) -> datetime:
        try:
            return parse_time(at)[0] if at else datetime.now(UTC)
        except KeelError as exc:
            raise HTTPException(422, str(exc)) from None

    def known(as_of: str | None) -> datetime | None:
        return when(as_of) if as_of else None

    def fresh() -> dict[str, Any]:
        return views.check().as_dict() if views is not None else unfolded(rt)

    def reply(doc: dict[str, Any]) -> Response:
        return Response(orjson.dumps(doc, default=str), media_type="application/json")

    def answer(fn: Any, *args: Any, key: str | None = None, **extra: Any) -> Response:
        """A query's answer with its freshness; a KeelError (unknown family, model, prefix)
        is a 404 naming what was not found."""
        freshness = fresh()
        try:
            found = fn(*args)
        except KeelError as exc:
            raise HTTPException(404, str(exc)) from None
        doc = {**extra, key: dump(found)} if key else dict(dump(found))
        doc["freshness"] = freshness
        if reset := latest_reset(store.get(TRUST_RESETS)):  # a declared restore: always said
            doc["trust_reset"] = reset
        return reply(doc)

    def serving_answer(family: str, env: str, at: str | None, as_of: str | None) -> Response:
        # the hot path: the function the client's `serving` calls, without the typed wrapper
        return answer(vq.serving_at, store, family, env, when(at), known(as_of))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # async: these answers take tens of microseconds; a hop to the thread pool would cost more
    # than the answer (the views' reads are local or one Redis round trip)
    @app.get("/v1/serving/{family}/{env}")
    async def serving(
        family: str, env: str, at: str | None = None, as_of: str | None = None
    ) -> Response:
        return serving_answer(family, env, at, as_of)

    @app.get("/v1/why/{family}/{env}")
    async def why(
        family: str, env: str, at: str | None = None, as_of: str | None = None
    ) -> Response:
        return answer(client.why, family, env, when(at), known(as_of))

    @app.get("/v1/models/{model}/why-promoted")
    async def why_promoted(
        model: str, over: str | None = None, env: str | None = None, as_of: str | None = None
    ) -> Response:
        """MODEL and OVER: full IDs or unique prefixes (>= 8 hex characters). With `env`, that
        environment's promotion; without, one answer per environment the model reached."""
        return answer(client.why_promoted, model, env, over, known(as_of))

    @app.get("/v1/models/{a}/diff/{b}")
    async def diff(
        a: str, b: str, top: int = Query(5, ge=1, le=100), as_of: str | None = None
    ) -> Response:
        return answer(client.diff, a, b, top, known(as_of))

    @app.get("/v1/registry/{family}")
    async def registry(
        family: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
        as_of: str | None = None,
    ) -> Response:
        return answer(
            client.history,
            family,
            offset,
            limit,
            known(as_of),
            key="decisions",
            offset=offset,
            limit=limit,
        )

    @app.get("/v1/report/{family}")
    def report(
        family: str,
        start: str = Query(..., alias="from", description="ISO 8601, included"),
        end: str = Query(..., alias="to", description="ISO 8601, excluded"),
        env: str | None = None,
        format: str = Query("html", pattern="^(html|pdf|json)$"),
    ) -> Response:
        """The review pack (as `keel audit report`), signed by this process's identity (else
        the audit identity). It verifies the whole log first: seconds on the demo, minutes at
        a million events; not for polling."""
        try:
            pack = client.report(
                family, when(start), when(end), env, identity=rt.settings.identity or "audit"
            )
            if format == "pdf":
                return Response(pack.pdf(), media_type="application/pdf")
        except KeelError as exc:
            raise HTTPException(422, {"error": str(exc), "hint": exc.hint}) from None
        if format == "json":
            return reply({**pack.document, "ok": pack.ok, "signed_by": pack.signed_by})
        return Response(pack.html, media_type="text/html; charset=utf-8")

    # -- what exists (newest first, paginated) -----------------------------------------------
    @app.get("/v1/families")
    async def families() -> Response:
        return answer(client.families, key="families")

    @app.get("/v1/families/{family}/models")
    async def models(
        family: str,
        env: str | None = None,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        """Models of FAMILY; with `env`, the deployments of ENV and the model each deployed."""
        return answer(
            client.models, family, env, offset, limit, key="models", offset=offset, limit=limit
        )

    @app.get("/v1/families/{family}/datasets")
    async def datasets(
        family: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            client.datasets, family, offset, limit, key="datasets", offset=offset, limit=limit
        )

    @app.get("/v1/families/{family}/deployments/{env}")
    async def deployments(
        family: str,
        env: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            client.deployments,
            family,
            env,
            offset,
            limit,
            key="deployments",
            offset=offset,
            limit=limit,
        )

    @app.get("/v1/artifacts")
    async def artifacts(
        kind: str | None = None,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            client.artifacts, kind, offset, limit, key="artifacts", offset=offset, limit=limit
        )

    # -- what people do (POSTs with an act token; they act as the token's person) ----------
    def act(request: Request, command: Any) -> Response:
        """Run `command(client, attestation)` as the token's person: refused (409) with the
        reason when Keel refuses it, e.g. a gate that fails without override, an approver who
        triggered the promotion. The guard refused other scopes already; without any token
        configured there is no person to act for: 403."""
        principal = request.scope.get("state", {}).get("principal")
        if principal is None or principal.scope != ACT or not principal.identity:
            raise HTTPException(
                403,
                "commands need a token of scope act, which names the person acting: create "
                "one with `keel audit tokens create --scope act --identity NAME` and send it "
                "as Authorization: Bearer (queries need none, or a read token)",
            )
        att = acting.attest(rt, principal)
        person = Client.over(acting.runtime_for(rt, att), views=store)
        try:
            done = command(person, att)
        except KeelError as exc:
            raise HTTPException(
                409, {"error": str(exc), "hint": exc.hint, "authenticated": att.as_dict()}
            ) from None
        return reply({**dump(done), "authenticated": att.as_dict()})

    @app.get("/v1/families/{family}/pending")
    def pending(family: str, env: str | None = None) -> Response:
        return answer(client.pending, family, env, key="pending")

    noted = acting.noted

    @app.post("/v1/models/{model}/approve")
    def approve(model: str, body: Review, request: Request) -> Response:
        return act(request, lambda c, a: c.approve(model, body.env, noted(body.reason, a), body.at))

    @app.post("/v1/models/{model}/reject")
    def reject(model: str, body: Review, request: Request) -> Response:
        return act(request, lambda c, a: c.reject(model, body.env, noted(body.reason, a), body.at))

    @app.post("/v1/models/{model}/evaluate")
    def evaluate(model: str, body: Target, request: Request) -> Response:
        # the gate's decision has no reason of the person's: it records them as its actor
        return act(request, lambda c, a: c.evaluate(model, body.env, body.at))

    @app.post("/v1/models/{model}/deploy")
    def deploy(model: str, body: DeployRequest, request: Request) -> Response:
        return act(
            request,
            lambda c, a: c.deploy(model, body.env, noted(body.reason, a), body.override, body.at),
        )

    @app.post("/v1/families/{family}/rollback")
    def rollback(family: str, body: RollbackRequest, request: Request) -> Response:
        return act(
            request,
            lambda c, a: c.rollback(family, body.env, body.to, noted(body.reason, a), body.at),
        )

    from keel_services.audit.console import routes as console

    console.mount(app, rt, client, store, fresh, book)
    telemetry.instrument(app, "audit")  # inside the fast path: it answers first
    app.add_middleware(ServingFastPath, serving=serving_answer)
    app.add_middleware(
        Guard,
        tokens=book,
        max_body=MAX_BODY,
        # the console's login form posts a form; every other body is JSON
        media_types=("application/json", "application/x-www-form-urlencoded"),
        cookie=console.COOKIE,
        public=(console.BASE + "login", "/favicon.ico"),
        login=console.BASE + "login",
    )
    return app


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str = Field(min_length=1, max_length=200)
    at: str | None = Field(None, description="business time, ISO 8601 (default: now)")


class Review(Target):
    reason: str = Field(min_length=1, max_length=2000)


class DeployRequest(Review):
    override: bool = False


class RollbackRequest(Target):
    to: str | None = Field(None, description="model ID or prefix (default: the previous one)")
    reason: str | None = Field(None, max_length=2000)


def dump(found: Any) -> Any:
    """An answer as JSON-ready data: the client's typed results as the views' documents."""
    if isinstance(found, BaseModel):
        return found.model_dump(mode="json", exclude_unset=True)
    if isinstance(found, list):
        return [dump(x) for x in found]
    return found


class ServingFastPath:
    """GET /v1/serving/{family}/{env}[?at=T], the question asked most, answered by the same
    function as the FastAPI route but without FastAPI's per-request parameter solving: that
    took ~100 of the ~200 us an answer cost in-process (decision 0012). The route stays the
    documented one (OpenAPI); anything this path does not recognise goes to it unchanged."""

    def __init__(self, app: Any, serving: Any) -> None:
        self.app, self.serving = app, serving

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        parts = scope["path"].split("/") if scope["type"] == "http" else []
        if len(parts) == 5 and parts[1:3] == ["v1", "serving"] and scope["method"] == "GET":
            query = parse_qs(scope["query_string"].decode("latin-1"))
            family, env = unquote(parts[3]), unquote(parts[4])
            single = all(len(v) == 1 for v in query.values())
            if family and env and set(query) <= {"at", "as_of"} and single:
                try:
                    response = self.serving(
                        family, env, query.get("at", [None])[0], query.get("as_of", [None])[0]
                    )
                except HTTPException as exc:
                    response = JSONResponse({"detail": exc.detail}, exc.status_code)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def replica_path(rt: Runtime) -> Path:
    """The API's replica of the views, one per log (a home pointed at another cluster or
    prefix gets another file): under KEEL_HOME, rebuilt from the log if deleted."""
    digest = hashlib.sha256(rt.settings.bus_url().encode()).hexdigest()[:16]
    return rt.settings.home / "replicas" / f"audit-views-{digest}.db"


def unfolded(rt: Runtime) -> dict[str, Any]:
    """Freshness when another process folds: the log's ends against the views' tracking (on
    Kafka a committed transaction's marker counts one offset per partition)."""
    positions = rt.views.tracking("audit")
    ends = rt.log.end_offsets(EVENT_TOPICS)
    return Freshness(
        lag(ends, positions), 0.0, {f"{t}/{p}": o for (t, p), o in sorted(positions.items())}
    ).as_dict()
