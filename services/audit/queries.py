"""The audit API's questions (GET /v1/...): the same as `keel audit ...`, read from the views."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response

from keel.errors import KeelError
from keel_services.audit.answers import Answers, known, reply, when

MAX_OFFSET = 1 << 53  # beyond any registry; SQLite and JSON numbers stay exact below it


def router(ans: Answers) -> APIRouter:
    r = APIRouter()
    client, answer = ans.client, ans.answer

    @r.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # async: these answers take tens of microseconds; a hop to the thread pool would cost more
    # than the answer (the views' reads are local or one Redis round trip)
    @r.get("/v1/serving/{family}/{env}")
    async def serving(
        family: str, env: str, at: str | None = None, as_of: str | None = None
    ) -> Response:
        return ans.serving(family, env, at, as_of)

    @r.get("/v1/why/{family}/{env}")
    async def why(
        family: str, env: str, at: str | None = None, as_of: str | None = None
    ) -> Response:
        return answer(client.why, family, env, when(at), known(as_of))

    @r.get("/v1/models/{model}/why-promoted")
    async def why_promoted(
        model: str, over: str | None = None, env: str | None = None, as_of: str | None = None
    ) -> Response:
        """MODEL and OVER: full IDs or unique prefixes (>= 8 hex characters). With `env`, that
        environment's promotion; without, one answer per environment the model reached."""
        return answer(client.why_promoted, model, env, over, known(as_of))

    @r.get("/v1/models/{a}/diff/{b}")
    async def diff(
        a: str, b: str, top: int = Query(5, ge=1, le=100), as_of: str | None = None
    ) -> Response:
        return answer(client.diff, a, b, top, known(as_of))

    @r.get("/v1/registry/{family}")
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

    @r.get("/v1/report/{family}")
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
                family, when(start), when(end), env, identity=ans.rt.settings.identity or "audit"
            )
            if format == "pdf":
                return Response(pack.pdf(), media_type="application/pdf")
        except KeelError as exc:
            raise HTTPException(422, {"error": str(exc), "hint": exc.hint}) from None
        if format == "json":
            return reply({**pack.document, "ok": pack.ok, "signed_by": pack.signed_by})
        return Response(pack.html, media_type="text/html; charset=utf-8")

    # -- what exists (newest first, paginated) -----------------------------------------------
    @r.get("/v1/families")
    async def families() -> Response:
        return answer(client.families, key="families")

    @r.get("/v1/families/{family}/models")
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

    @r.get("/v1/families/{family}/datasets")
    async def datasets(
        family: str,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            client.datasets, family, offset, limit, key="datasets", offset=offset, limit=limit
        )

    @r.get("/v1/families/{family}/deployments/{env}")
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

    @r.get("/v1/artifacts")
    async def artifacts(
        kind: str | None = None,
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        limit: int = Query(50, ge=1, le=1000),
    ) -> Response:
        return answer(
            client.artifacts, kind, offset, limit, key="artifacts", offset=offset, limit=limit
        )

    @r.get("/v1/families/{family}/pending")
    def pending(family: str, env: str | None = None) -> Response:
        return answer(client.pending, family, env, key="pending")

    return r
