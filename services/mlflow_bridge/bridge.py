"""One webhook delivery, start to finish: authenticate, check the window, skip a replay, record
the fact (or quarantine the body) durably, and say what happened. The HTTP app answers with it;
MLflow retries anything but a 2xx or 4xx, so nothing is acknowledged before the log holds it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keel.consume import quarantined
from keel.pipeline import Context
from keel_services.mlflow_bridge import domain, handlers
from keel_services.mlflow_bridge.sources import Sources

ACTOR = "mlflow-webhook"  # the webhook does not say which MLflow user acted
QUARANTINE_TOPIC = "mlflow-webhook"
MAX_EVENTS = 8  # a delivery's events never number more (see handlers.record)


@dataclass(frozen=True)
class Outcome:
    status: int
    doc: dict[str, Any]


class Bridge:
    def __init__(
        self,
        ctx: Context,
        secret: str,
        names: domain.Names,
        window_s: float = domain.WINDOW_S,
        clock: Callable[[], float] = time.time,
        sources: Sources | None = None,
    ) -> None:
        self.ctx = ctx
        self.sources = sources or Sources()  # what a delivery may read beyond itself
        self._secret = secret  # never logged, never in an answer
        self.names = names
        self.window_s = window_s
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()  # one delivery at a time: the bus is not thread-safe

    def receive(self, headers: Mapping[str, str], body: bytes) -> Outcome:
        try:
            delivery_id, signed_at = domain.authenticate(headers, body, self._secret)
        except domain.Unauthorized as exc:
            self.counts["unauthorized"] += 1
            return Outcome(401, {"detail": str(exc)})
        if not domain.fresh(signed_at, self.clock(), self.window_s):
            self.counts["stale"] += 1
            return Outcome(
                400,
                {
                    "detail": f"delivery {delivery_id} was signed at {signed_at}, outside the "
                    f"{self.window_s:.0f} s window: ignored (a replay, or a clock to fix)"
                },
            )
        with self._lock:
            cause = domain.cause(delivery_id)
            if self.ctx.read.caused_ids(cause):
                self.counts["duplicate"] += 1
                return Outcome(200, {"status": "duplicate", "delivery_id": delivery_id})
            ids = [domain.event_id(delivery_id, n) for n in range(MAX_EVENTS)]
            rec = handlers.Recorder(self.ctx, cause, ids)
            try:
                delivery = domain.parse(body)
            except domain.Malformed as exc:
                self._quarantine(rec, exc, body)
                rec.commit()
                self.counts["quarantined"] += 1
                return Outcome(200, {"status": "quarantined", "reason": exc.reason})
            handlers.record(rec, delivery.fact, delivery.at, self.names, ACTOR, self.sources)
            events = rec.commit()
        self.counts["recorded"] += 1
        return Outcome(
            200,
            {
                "status": "recorded",
                "delivery_id": delivery_id,
                "events": [e.EVENT_TYPE for e in events],
            },
        )

    def _quarantine(self, rec: handlers.Recorder, exc: domain.Malformed, body: bytes) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        env = rec.envelope("EventQuarantined", QUARANTINE_TOPIC, now, ACTOR)
        rec.events.append(quarantined(env, QUARANTINE_TOPIC, 0, 0, exc.error, exc.reason, body))

    def stats(self) -> dict[str, int]:
        return {
            k: self.counts[k]
            for k in ("recorded", "duplicate", "quarantined", "unauthorized", "stale")
        }
