"""The audit service's HTTP JSON API: the same questions as `keel audit …`, read from the views.

GET /v1/serving/{family}/{env}?at=T        the model serving then (one index lookup)
GET /v1/why/{family}/{env}?at=T            deployment -> promotion -> eval -> model -> data
GET /v1/models/{model_id}/why-promoted?over=OTHER&env=E
GET /v1/models/{a}/diff/{b}?top=5
GET /v1/registry/{family}?offset=0&limit=50  (paginated, limit <= 1000)
OpenAPI at /docs. When KEEL_API_TOKEN is set, every /v1 endpoint needs `Authorization: Bearer`.
Every answer carries `freshness`: the log offsets not yet folded (`lag`), how old that check is
(`checked_ms_ago`) and the views' tracking positions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Response

from keel.audit import view_queries as vq
from keel.audit.freshness import Freshness, FreshViews, lag
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.timeparse import parse_time
from keel.topics import EVENT_TOPICS
from services.http_guard import Guard

MAX_BODY = 64 << 10
MAX_OFFSET = 1 << 53  # beyond any registry; SQLite and JSON numbers stay exact below it


def create_app(rt: Runtime, token: str | None = None, refresh: bool = True) -> FastAPI:
    """refresh: keep the views at the log's end (FreshViews); False: answer from the views as
    they are (another process folds), still saying how far behind they are."""
    app = FastAPI(title="Keel audit", version="1", description=__doc__)
    app.add_middleware(Guard, token=token, max_body=MAX_BODY)  # read-only: GETs, no bodies
    remote = bool(getattr(rt.log, "remote", False))
    views = (
        FreshViews(rt.log, rt.views, rt.codec, rt.signer, watch_every=0.05 if remote else None)
        if refresh
        else None
    )

    def when(at: str | None) -> datetime:
        try:
            return parse_time(at)[0] if at else datetime.now(UTC)
        except KeelError as exc:
            raise HTTPException(422, str(exc)) from None

    def answer(fn: Any, *args: Any, key: str | None = None, **extra: Any) -> Response:
        freshness = views.check().as_dict() if views is not None else unfolded(rt)
        try:
            found = fn(rt.views, *args)
        except KeelError as exc:
            raise HTTPException(404, str(exc)) from None
        doc = {**extra, key: found} if key else dict(found)
        doc["freshness"] = freshness
        return Response(orjson.dumps(doc, default=str), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/serving/{family}/{env}")
    def serving(family: str, env: str, at: str | None = None) -> Response:
        return answer(vq.serving_at, family, env, when(at))

    @app.get("/v1/why/{family}/{env}")
    def why(family: str, env: str, at: str | None = None) -> Response:
        return answer(vq.why, family, env, when(at))

    @app.get("/v1/models/{model_id}/why-promoted")
    def why_promoted(model_id: str, over: str | None = None, env: str | None = None) -> Response:
        return answer(vq.why_promoted, model_id, env, over)

    @app.get("/v1/models/{a}/diff/{b}")
    def diff(a: str, b: str, top: int = Query(5, ge=1, le=100)) -> Response:
        return answer(vq.diff, a, b, lambda aid: json.loads(rt.artifacts.read_bytes(aid)), top)

    @app.get("/v1/registry/{family}")
    def registry(
        family: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            vq.registry_history, family, offset, limit, key="decisions", offset=offset, limit=limit
        )

    return app


def unfolded(rt: Runtime) -> dict[str, Any]:
    """Freshness when another process folds: the log's ends against the views' tracking (on
    Kafka a committed transaction's marker counts one offset per partition)."""
    positions = rt.views.tracking("audit")
    ends = rt.log.end_offsets(EVENT_TOPICS)
    return Freshness(
        lag(ends, positions), 0.0, {f"{t}/{p}": o for (t, p), o in sorted(positions.items())}
    ).as_dict()
