"""POST /v1/models/{family}/predict: validate against the inference contract, predict with the
model named by the environment's current deployment, hot-swap on ModelDeployed."""

from __future__ import annotations

import json
import logging
import pickle
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from keel import telemetry
from keel.artifacts.store import ArtifactError
from keel.audit.freshness import FreshViews
from keel.audit.reads import Reads
from keel.bootstrap import Runtime
from keel.contracts import serving_inputs
from keel.errors import KeelError
from keel.events import envelope
from keel.events import generated as g
from keel.http_guard import Guard
from keel.plugins import load_entry_point
from keel.project import Project
from keel.reconcile import reconcile
from keel.service import Producer, artifact_rejected
from keel.skew import Window
from keel_services.serve.answers import finite_answer
from keel_services.serve.payload import payload_model

MAX_BODY = 1 << 20
SERVICE = Producer("serve", __package__ or __name__)  # its identity and code version
logger = logging.getLogger(__name__)
QUEUE = 20_000  # served rows waiting to be folded into the skew window (~1 s of heavy traffic)


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
        self.task = project.family(family).task
        self.predictor = project.family(family).predictor
        training, inference = project.contracts(family)
        problems = reconcile(training.schema, inference.schema)
        if problems:  # the gate of every retrain and deploy: never serve across a divergence
            raise KeelError(
                f"{family}: training and inference contracts diverge; not serving: "
                + "; ".join(p.message for p in problems),
                hint="fix the contracts, then check with "
                f"`keel schemas reconcile --family {family}`",
            )
        self.inputs = frozenset(serving_inputs(training, inference))
        self.transform = load_entry_point(project.family(family).transform)
        self.current: Loaded | None = None
        # The read model, caught up when the log moved (no checkpoints from here: that is the
        # projector's and the commands' job); forged or undecodable records never reach it.
        self.fresh = FreshViews(rt.log, rt.views, rt.codec, None, rt.trust)
        self.read = Reads(rt.views)
        # training/serving skew: bounded statistics of what this process is asked (keel.skew),
        # recorded every `window_seconds` as ServingStatsRecorded; 0 turns it off
        self.window_seconds = project.family(family).skew.window_seconds
        self.window = Window()
        self.window_start = datetime.now(UTC)
        self._window_lock = threading.Lock()
        self._queued: deque[dict[str, Any]] = deque(maxlen=QUEUE)
        self._stop = threading.Event()
        self._rejected: set[tuple[str, str]] = set()
        self.problem: str | None = None  # why the deployed model is not the one served
        self.refresh()

    def refresh(self) -> None:
        """Fold what arrived; swap to the deployed model if it changed. Raises when the deployed
        model cannot be loaded (the old one keeps serving; `problem` says why until a later
        refresh succeeds)."""
        self.fresh.check()
        iv = self.read.serving_now(self.family, self.env)
        if iv is None or (
            self.current is not None and self.current.deployment_id == iv.deployment_event_id
        ):
            self.problem = None
            return
        try:
            self.current = self._load(iv.model_id, iv.deployment_event_id)  # atomic swap
            self.problem = None
            telemetry.SERVED.labels(self.family, self.env).info(
                {"model_id": iv.model_id, "deployment_id": iv.deployment_event_id}
            )
        except Exception as exc:
            self.problem = (
                f"not serving the deployed model {iv.model_id[:16]} (deployment "
                f"{iv.deployment_event_id[:16]}): {type(exc).__name__}: {exc}"
            )
            raise

    def observe(self, features: dict[str, Any]) -> None:
        """O(1) on the request path: the row is queued (deque appends are thread-safe) and
        folded into the window by the follower thread; past QUEUE rows between two folds the
        oldest are dropped from the statistics (never from the answers)."""
        if self.window_seconds:
            self._queued.append(features)

    def fold_queued(self) -> None:
        with self._window_lock:
            while self._queued:
                self.window.add(self._queued.popleft())

    def record_window(self, now: datetime | None = None) -> g.ServingStatsRecorded | None:
        """Record the window's statistics (if it saw requests) and start a new one."""
        now = now or datetime.now(UTC)
        self.fold_queued()
        with self._window_lock:
            window, start = self.window, self.window_start
            self.window, self.window_start = Window(), now
        loaded = self.current
        if not window.requests or loaded is None:
            return None
        event = g.ServingStatsRecorded(
            envelope=envelope(
                "ServingStatsRecorded",
                subject=f"{self.family}/{self.env}",
                service=SERVICE.name,
                code_version=SERVICE.code_version,  # serve's own, not the library's alone
                actor="serve",
                correlation_id=loaded.deployment_id,
                occurred_at=now,
            ),
            family=self.family,
            env=self.env,
            model_id=loaded.model_id,
            window_start=start.isoformat(),
            window_end=now.isoformat(),
            requests=window.requests,
            stats_json=json.dumps(window.doc(), sort_keys=True),
        )
        self.rt.publish([event])
        return event

    def _load(self, model_id: str, deployment_id: str) -> Loaded:
        model = pickle.loads(self._verified(model_id))
        trained = self.read.model(model_id)
        if trained is None:
            raise KeelError(
                f"deployed model {model_id[:16]} has no ModelTrained in the views",
                hint="fold the views from the log (`keel audit rebuild`), then serve again",
            )
        fs = json.loads(self._verified(trained.feature_set_ids[0]).splitlines()[0])
        return Loaded(model_id, deployment_id, model, fs["columns"])

    def _verified(self, artifact_id: str) -> bytes:
        """The artifact's bytes, checked against the digest its signed ArtifactRecorded
        states; a failure is recorded (ArtifactRejected, once per artifact and digest while
        retrying) and raised."""
        node = self.read.artifact(artifact_id)
        recorded = node["digest"] if node else ""
        try:
            return self.rt.artifacts.read_recorded(artifact_id, recorded)
        except ArtifactError as exc:
            seen = (artifact_id, getattr(exc, "actual", ""))
            if seen not in self._rejected:
                self._rejected.add(seen)
                record_rejection(self.rt, artifact_id, "serve", recorded, exc)
            raise

    def follow(self, every: float = 1.0, max_backoff: float = 60.0) -> threading.Thread:
        """Polls for deployments in a thread that survives any error: it logs, backs off
        (doubling up to `max_backoff`) and tries again; readiness reports the problem."""

        def loop() -> None:
            wait = every
            while not self._stop.wait(wait):
                try:
                    self.refresh()
                    self.fold_queued()
                    age = (datetime.now(UTC) - self.window_start).total_seconds()
                    if self.window_seconds and age >= self.window_seconds:
                        self.record_window()
                    wait = every
                except Exception as exc:  # never die: the next deployment may be fine
                    wait = min(max(wait, every) * 2, max_backoff)
                    logger.error("serve follower: %s; retrying in %.1f s", exc, wait)

        thread = threading.Thread(target=loop, name="keel-serve-follow", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def record_rejection(
    rt: Runtime, artifact_id: str, action: str, recorded: str, exc: ArtifactError
) -> None:
    """Best effort: the refusal itself never depends on the record landing."""
    event = artifact_rejected(
        envelope(
            "ArtifactRejected",
            subject=artifact_id,
            service=SERVICE.name,
            code_version=SERVICE.code_version,
            actor=rt.settings.who(),
            correlation_id=artifact_id,
        ),
        artifact_id,
        action,
        recorded,
        exc,
    )
    try:
        rt.publish([event])
    except KeelError as err:
        logger.warning("could not record the refusal of %s: %s", artifact_id[:16], err)


def create_app(server: Server, token: str | None = None) -> FastAPI:
    _, inference = server.project.contracts(server.family)
    Payload = payload_model(inference)
    app = FastAPI(title=f"Keel serve: {server.family} ({server.env})", version="1")

    @app.middleware("http")
    async def limits(request: Request, call_next: Any) -> Any:
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
        if server.problem is not None:
            return JSONResponse(
                {"ready": False, "reason": server.problem, "serving": server.current.model_id},
                status_code=503,
            )
        return JSONResponse({"ready": True, "model_id": server.current.model_id})

    timer = telemetry.PREDICT.labels(server.family, server.env)

    def predict(payload: Any) -> dict[str, Any]:
        with timer.time():
            return _predict(payload)

    def _predict(payload: Any) -> dict[str, Any]:
        loaded = server.current  # read once: a swap mid-request cannot mix two models
        if loaded is None:
            raise HTTPException(503, f"no model deployed to {server.env} yet")
        fields = payload.model_dump()  # type: ignore[attr-defined]
        # the transform sees what it saw in training: the features, no metadata
        try:
            features = server.transform({k: v for k, v in fields.items() if k in server.inputs})
        except Exception as exc:  # user code: the caller learns what failed, never a bare 500
            raise HTTPException(
                422, {"detail": f"the transform raised {type(exc).__name__} on this payload"}
            ) from None
        row = np.asarray([[features[c] for c in loaded.columns]], dtype=float)
        bad = [c for c, v in zip(loaded.columns, row[0], strict=True) if not np.isfinite(v)]
        if bad:
            raise HTTPException(
                422,
                {"detail": f"the transform produced non-finite values for {bad}", "features": bad},
            )
        out = finite_answer(loaded.model, loaded.columns, row, server.task, server.predictor)
        server.observe(features)  # what was answered: a refused row would skew the window
        return {**out, "model_id": loaded.model_id, "deployment_id": loaded.deployment_id}

    # The body type is built from the contract at run time; postponed annotations (PEP 563)
    # would leave FastAPI a string it cannot resolve, so it is set on the function directly.
    predict.__annotations__["payload"] = Payload
    app.post(f"/v1/models/{server.family}/predict")(predict)

    @app.post("/v1/models/{family}/predict", include_in_schema=False)
    def other_family(family: str) -> JSONResponse:  # matched only when not server.family
        return JSONResponse(
            {
                "detail": f"this process serves family {server.family!r} ({server.env}), "
                f"not {family!r}",
                "families": [server.family],
                "hint": f"POST /v1/models/{server.family}/predict here; for {family!r}, "
                f"run `keel serve --family {family} --env {server.env}` (`keel audit "
                "families` lists the project's families)",
            },
            status_code=404,
        )

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 404 or exc.detail != "Not Found":  # ours say what they mean
            return await http_exception_handler(request, exc)
        return JSONResponse(
            {
                "detail": f"no route {request.method} {request.url.path}",
                "routes": [
                    f"POST /v1/models/{server.family}/predict",
                    "GET /healthz",
                    "GET /readyz",
                    "GET /metrics",
                ],
            },
            status_code=404,
        )

    telemetry.instrument(app, "serve")
    # added last, so it runs first: token, size and content type before any body is read
    app.add_middleware(Guard, token=token, max_body=MAX_BODY, media_types=("application/json",))
    return app
