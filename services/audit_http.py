"""The audit service's HTTP JSON API: the same questions as `keel audit …`, read from the views.

GET /v1/serving/{family}/{env}?at=T        the model serving then (one index lookup)
GET /v1/why/{family}/{env}?at=T            deployment -> promotion -> eval -> model -> data
GET /v1/models/{model_id}/why-promoted?over=OTHER&env=E
GET /v1/models/{a}/diff/{b}?top=5
GET /v1/registry/{family}?offset=0&limit=50  (paginated, limit <= 1000)
OpenAPI at /docs. When KEEL_API_TOKEN is set, every /v1 endpoint needs `Authorization: Bearer`.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query

from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.timeparse import parse_time
from services.http_guard import Guard

MAX_BODY = 64 << 10
MAX_OFFSET = 1 << 53  # beyond any registry; SQLite and JSON numbers stay exact below it


def create_app(rt: Runtime, token: str | None = None, refresh: bool = True) -> FastAPI:
    app = FastAPI(title="Keel audit", version="1", description=__doc__)
    app.add_middleware(Guard, token=token, max_body=MAX_BODY)  # read-only: GETs, no bodies
    lock = threading.Lock()

    def fresh() -> None:
        if refresh:  # fold whatever arrived since the last request (incremental, idempotent)
            with lock:
                Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()

    def when(at: str | None) -> datetime:
        try:
            return parse_time(at)[0] if at else datetime.now(UTC)
        except KeelError as exc:
            raise HTTPException(422, str(exc)) from None

    def answer(fn: Any, *args: Any) -> Any:
        fresh()
        try:
            return fn(rt.views, *args)
        except KeelError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/serving/{family}/{env}")
    def serving(family: str, env: str, at: str | None = None) -> dict[str, Any]:
        return dict(answer(vq.serving_at, family, env, when(at)))

    @app.get("/v1/why/{family}/{env}")
    def why(family: str, env: str, at: str | None = None) -> dict[str, Any]:
        return dict(answer(vq.why, family, env, when(at)))

    @app.get("/v1/models/{model_id}/why-promoted")
    def why_promoted(
        model_id: str, over: str | None = None, env: str | None = None
    ) -> dict[str, Any]:
        return dict(answer(vq.why_promoted, model_id, env, over))

    @app.get("/v1/models/{a}/diff/{b}")
    def diff(a: str, b: str, top: int = Query(5, ge=1, le=100)) -> dict[str, Any]:
        return dict(
            answer(vq.diff, a, b, lambda aid: json.loads(rt.artifacts.read_bytes(aid)), top)
        )

    @app.get("/v1/registry/{family}")
    def registry(
        family: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> dict[str, Any]:
        return {
            "offset": offset,
            "limit": limit,
            "decisions": answer(vq.registry_history, family, offset, limit),
        }

    return app
