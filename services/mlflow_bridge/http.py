"""The MLflow bridge over HTTP: `POST /v1/mlflow/webhooks` takes MLflow's registry webhooks;
`GET /v1/mlflow/stats` counts what became of them (recorded, duplicate, quarantined,
unauthorized, stale)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from keel import telemetry
from keel.http_guard import Guard
from keel_services.mlflow_bridge.bridge import Bridge

MAX_BODY = 1 << 20  # MLflow's registry payloads are a few hundred bytes


def create_app(bridge: Bridge) -> FastAPI:
    app = FastAPI(title="Keel MLflow bridge", version="1", description=__doc__)
    telemetry.instrument(app, "mlflow-bridge")
    # The webhook authenticates by its HMAC signature, not a bearer token.
    app.add_middleware(Guard, token=None, max_body=MAX_BODY, media_types=("application/json", ""))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/mlflow/stats")
    def stats() -> dict[str, int]:
        return bridge.stats()

    @app.post("/v1/mlflow/webhooks")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        out = bridge.receive(headers, body)
        return JSONResponse(out.doc, status_code=out.status)

    return app
