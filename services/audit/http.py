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
process, which wakes when records arrive). A new replica starts from the newest views snapshot
that verifies against the audit key (`keel audit snapshot`, keel.audit.snapshot) and folds only
the tail; until it is ready, answers come from the deployment's own views (the projector's
Redis) when it has them, else from that snapshot read where it lies. `freshness.source` and the
headers Keel-Lag, Keel-Checked-Ms-Ago and Keel-Views say which views answered and how far
behind the log they were.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from keel import telemetry
from keel.audit.anchors import default_witness
from keel.audit.freshness import (
    FoldedElsewhere,
    Freshness,
    FreshViews,
    StartingViews,
    WatchedViews,
    lag,
)
from keel.audit.snapshot import bus_key, open_newest, snapshot_dir
from keel.bootstrap import Runtime
from keel.client import Client
from keel.http_guard import Guard
from keel.secure.tokens import TokenBook
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from keel_services.audit import people, queries
from keel_services.audit.answers import Answers
from keel_services.audit.fastpath import ServingFastPath

if TYPE_CHECKING:  # the application's commands port (injected, never imported here)
    from keel.commands import Commands

logger = logging.getLogger(__name__)
MAX_BODY = 64 << 10
MAX_OFFSET = queries.MAX_OFFSET


def create_app(
    rt: Runtime,
    token: str | None = None,
    refresh: bool = True,
    tokens: TokenBook | None = None,
    commands: Commands | None = None,
) -> FastAPI:
    """token: a read token (KEEL_API_TOKEN); tokens: the scoped tokens (default: the file
    settings name, keel.secure.tokens), which alone may act; commands: what records the
    people's commands (the application's, injected by the composition root; without, the API
    answers questions and refuses commands).

    refresh: keep the views at the log's end and answer from them: on the embedded log the
    views file itself (FreshViews, checked per request); on a remote log (Kafka) a replica of
    the views in a local file, folded by a watcher process (WatchedViews). False: answer from
    the configured views as they are (another process folds), saying how far behind they
    are."""
    watched, store, fresh = read_model(rt, refresh)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if watched is not None:
            watched.close()  # the watcher would outlive a server stopped inside a longer process

    app = FastAPI(title="Keel audit", version="1", description=__doc__, lifespan=lifespan)
    book = tokens or TokenBook(rt.settings.api_tokens_file(), legacy_read=token)
    client = Client.over(rt, views=store, commands=commands)  # over the kept-fresh views
    answers = Answers(rt, client, store, fresh, commands)
    app.include_router(queries.router(answers))
    app.include_router(people.router(answers))

    from keel_services.audit.console import routes as console

    console.mount(app, rt, client, store, fresh, book)
    telemetry.instrument(app, "audit")  # inside the fast path: it answers first
    app.add_middleware(ServingFastPath, serving=answers.serving)
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


def read_model(
    rt: Runtime, refresh: bool
) -> tuple[WatchedViews | None, ViewStore, Callable[[], dict[str, Any]]]:
    """The views answers read and their freshness check (see create_app's `refresh`). On a
    remote log the replica starts from the newest verified snapshot; until it reached the
    log's end, answers come from the deployment's views when a projector keeps them (they
    hold its tracking), else from that snapshot read where it lies, else the first answer
    waits for the replica."""
    if refresh and getattr(rt.log, "remote", False):
        fallback, source = projected(rt.views), "projector views (replica starting)"
        if fallback is None and (found := open_newest(snapshot_dir(rt.settings), rt.trust)):
            fallback, source = found[0], "snapshot (replica starting)"
        watched = WatchedViews(
            rt.settings,
            replica_path(rt),
            snapshots=snapshot_dir(rt.settings),
            wait=fallback is None,
        )
        if fallback is None:
            return watched, SqliteViewStore(watched.replica), _sourced(watched.check, "replica")
        starting = StartingViews(watched, fallback)
        elsewhere = FoldedElsewhere(rt.log, fallback)

        def fresh() -> dict[str, Any]:
            if starting.on_replica:
                return {**watched.check().as_dict(), "source": "replica"}
            return {**elsewhere.check().as_dict(), "source": source}

        return watched, starting, fresh
    if refresh:
        views = FreshViews(
            rt.log,
            rt.views,
            rt.codec,
            rt.checkpoint_signer,
            rt.trust,
            witness=default_witness(rt),
        )
        return None, rt.views, _sourced(views.check, "views")
    return None, rt.views, lambda: {**unfolded(rt), "source": "views"}


def _sourced(check: Callable[[], Freshness], source: str) -> Callable[[], dict[str, Any]]:
    return lambda: {**check().as_dict(), "source": source}


def projected(views: ViewStore) -> ViewStore | None:
    """The deployment's views if a projector keeps them (they hold its tracking): an API can
    answer from them at once. None when they are empty or out of reach (the replica then
    starts before the first answer)."""
    try:
        return views if views.tracking("audit") else None
    except Exception as exc:  # only a shortcut: the replica answers once folded
        logger.warning("the deployment's views are out of reach (%s): waiting for the replica", exc)
        return None


def replica_path(rt: Runtime) -> Path:
    """The API's replica of the views, one per log (a home pointed at another cluster or
    prefix gets another file): under KEEL_HOME, rebuilt from the log if deleted."""
    return rt.settings.home / "replicas" / f"audit-views-{bus_key(rt.settings.bus_url())}.db"


def unfolded(rt: Runtime) -> dict[str, Any]:
    """Freshness when another process folds: the log's ends against the views' tracking (on
    Kafka a committed transaction's marker counts one offset per partition)."""
    positions = rt.views.tracking("audit")
    ends = rt.log.end_offsets(EVENT_TOPICS)
    return Freshness(
        lag(ends, positions), 0.0, {f"{t}/{p}": o for (t, p), o in sorted(positions.items())}
    ).as_dict()
