"""POST /v1/models/{family}/predict: validate against the inference contract, predict with the
model named by the environment's current deployment, hot-swap on ModelDeployed."""

from __future__ import annotations

import hmac
import json
import pickle
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from keel.audit.folds import AuditState, fold
from keel.bootstrap import Runtime
from keel.codec import CodecError
from keel.events import decode_event
from keel.plugins import load_entry_point
from keel.project import Project
from services.serve.payload import payload_model

MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Loaded:
    model_id: str
    deployment_id: str
    model: Any
    columns: list[str]


class Server:
    """Holds the current model; a follower thread swaps it when a new deployment is recorded."""

    def __init__(self, rt: Runtime, project: Project, family: str, env: str) -> None:
        self.rt, self.project, self.family, self.env = rt, project, family, env
        self.transform = load_entry_point(project.family(family).transform)
        self.current: Loaded | None = None
        self.state = AuditState()
        self._positions: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self.refresh()

    def refresh(self) -> None:
        events = []
        for rec in self.rt.log.read(
            ["deployments", "features", "training"], self._positions or None
        ):
            self._positions[rec.tp] = rec.offset + 1
            try:
                events.append(decode_event(self.rt.codec, rec.value))
            except CodecError:
                continue
        fold(events, self.state)
        iv = self.state.serving_now(self.family, self.env)
        if iv is not None and (
            self.current is None or self.current.deployment_id != iv.deployment_event_id
        ):
            self.current = self._load(
                iv.model_id, iv.deployment_event_id
            )  # one assignment: atomic swap

    def _load(self, model_id: str, deployment_id: str) -> Loaded:
        model = pickle.loads(
            self.rt.artifacts.read_bytes(model_id)
        )  # verified bytes from our store
        trained = self.state.models[model_id]
        fs = json.loads(self.rt.artifacts.read_bytes(trained.feature_set_ids[0]).splitlines()[0])
        return Loaded(model_id, deployment_id, model, fs["columns"])

    def follow(self, every: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(every):
                self.refresh()

        threading.Thread(target=loop, name="keel-serve-follow", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def create_app(server: Server, token: str | None = None) -> FastAPI:
    _, inference = server.project.contracts(server.family)
    Payload = payload_model(inference)
    app = FastAPI(title=f"Keel serve: {server.family} ({server.env})", version="1")

    def auth(request: Request) -> None:
        if token and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
        ):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    @app.middleware("http")
    async def limits(request: Request, call_next: Any) -> Any:
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return JSONResponse({"detail": f"body over {MAX_BODY} bytes"}, status_code=413)
        try:
            return await call_next(request)
        except RecursionError:  # absurdly nested JSON: reject, never 500
            return JSONResponse({"detail": "JSON nested too deeply"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"][1:]) or "body",
                "problem": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors()[:50]
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        if server.current is None:
            return JSONResponse(
                {"ready": False, "reason": f"nothing deployed to {server.env} yet"}, status_code=503
            )
        return JSONResponse({"ready": True, "model_id": server.current.model_id})

    def predict(payload: Any) -> dict[str, Any]:
        loaded = server.current  # read once: a swap mid-request cannot mix two models
        if loaded is None:
            raise HTTPException(503, f"no model deployed to {server.env} yet")
        features = server.transform(payload.model_dump())  # type: ignore[attr-defined]
        row = np.asarray([[features[c] for c in loaded.columns]], dtype=float)
        p = float(loaded.model.predict_proba(row)[0, 1])
        return {
            "prediction": int(p >= 0.5),
            "probability": p,
            "model_id": loaded.model_id,
            "deployment_id": loaded.deployment_id,
        }

    # The body type is built from the contract at run time; postponed annotations (PEP 563)
    # would leave FastAPI a string it cannot resolve, so it is set on the function directly.
    predict.__annotations__["payload"] = Payload
    app.post(f"/v1/models/{server.family}/predict", dependencies=[Depends(auth)])(predict)

    return app
