"""Prometheus metrics of the long-running services (prometheus-client), defined in one place.

HTTP services (serve, ingest, audit) answer `GET /metrics` (behind the same bearer token as
their other routes); consumer services (`keel service run feature|train|promote|deploy|
projector`) serve it on `--metrics-port` (127.0.0.1). Names follow Prometheus' conventions:
`keel_` prefix, `_total` on counters, base units (seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, Info

EVENTS = Counter(
    "keel_events_processed_total",
    "Events a service's handlers acted on, by service and event type",
    ["service", "event_type"],
)
FAILED = Counter(
    "keel_events_failed_total",
    "Events a service's handler refused or failed on, by service and event type",
    ["service", "event_type"],
)
PUBLISHED = Counter(
    "keel_events_published_total",
    "Events a service recorded, by service and event type",
    ["service", "event_type"],
)
LAG = Gauge(
    "keel_consumer_lag",
    "Records of a topic partition the service's consumer group has not committed yet",
    ["service", "topic", "partition"],
)
PROJECTED = Counter("keel_projector_events_total", "Events the projector folded into the views")
PROJECTOR_BATCH = Histogram(
    "keel_projector_batch_seconds",
    "Time to fold and write one projector batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GATES = Counter(
    "keel_gate_outcomes_total",
    "Promotion gate decisions, by family, environment and outcome",
    ["family", "env", "outcome"],
)
QUARANTINED = Counter(
    "keel_records_quarantined_total",
    "Records quarantined at ingest, by family and rule",
    ["family", "rule"],
)
PREDICT = Histogram(
    "keel_predict_seconds",
    "Time to answer one prediction request (validation, transform, model)",
    ["family", "env"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
RESPONSES = Counter(
    "keel_http_responses_total",
    "HTTP responses by service and status code",
    ["service", "status"],
)
SERVED = Info(
    "keel_model_served",
    "The model a `keel serve` process answers with (model and deployment IDs)",
    ["family", "env"],
)

DECISION_OUTCOME = {
    "ModelPromoted": "promoted",
    "PromotionRejected": "rejected",
    "PromotionPending": "pending",
}


def record_lag(
    service: str,
    ends: Mapping[tuple[str, int], int],
    committed: Mapping[tuple[str, int], int],
) -> None:
    for (topic, part), end in ends.items():
        LAG.labels(service, topic, str(part)).set(max(0, end - committed.get((topic, part), 0)))


def recorded(events: Sequence[Any]) -> None:
    """Count what a process records: by producer and type; gate outcomes; quarantines."""
    for e in events:
        kind = e.EVENT_TYPE
        PUBLISHED.labels(e.envelope.producer.service, kind).inc()
        if kind in DECISION_OUTCOME:
            GATES.labels(e.family, e.env, DECISION_OUTCOME[kind]).inc()
        elif kind == "RecordQuarantined":
            QUARANTINED.labels(e.family, e.rule).inc()


class CountResponses:
    """Pure ASGI middleware counting responses by status (no per-request task or copy, unlike
    Starlette's BaseHTTPMiddleware, so it costs next to nothing on the predict path)."""

    def __init__(self, app: Any, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                RESPONSES.labels(self.service, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, sending)


def instrument(app: Any, service: str) -> None:
    """`GET /metrics` on a FastAPI app, and its responses counted by status code."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, make_asgi_app
    from starlette.responses import Response

    def page() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(CountResponses, service=service)
    # a mount alone answers /metrics with a 307 to /metrics/, which scrapers and curl without
    # -L take for a failure: the bare path is a route of its own
    app.add_api_route("/metrics", page, methods=["GET"], include_in_schema=False)
    app.mount("/metrics", make_asgi_app())


def serve_metrics(port: int) -> None:
    """Serve /metrics for a consumer service on 127.0.0.1:port (a daemon thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr="127.0.0.1")
