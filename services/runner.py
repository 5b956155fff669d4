"""Run one event-driven service in its own process and consumer group (`keel service run NAME`).

The service folds every event into its own audit state (that is what its decisions read) and
hands the event types it subscribes to to its handlers. At start it replays the log up to the
group's committed positions without acting (rebuilding state), then acts on what follows and
commits after each batch: a crash re-delivers at most the last batch, and handlers skip work
already recorded (deploy and promote look at the state before acting).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from keel.audit.folds import evolve, fold
from keel.audit.projector import Progress, Projector
from keel.bootstrap import Runtime
from keel.codec import CodecError
from keel.consume import quarantine_event
from keel.events import decode_event
from keel.pipeline import Context, Handler
from keel.topics import EVENT_TOPICS
from services.common import service_code_version

logger = logging.getLogger(__name__)

RUNNABLE = ("promote", "deploy", "projector")


def handlers_of(name: str) -> dict[str, Handler]:
    if name == "promote":
        from services.promote.handlers import HANDLERS as promote

        return dict(promote)
    if name == "deploy":
        from services.deploy.handlers import HANDLERS as deploy

        return dict(deploy)
    from keel.errors import KeelError

    raise KeelError(
        f"no long-running service named {name!r}",
        hint="consumer groups: promote, deploy, projector; HTTP: ingest, audit",
    )


def run_service(
    ctx: Context,
    name: str,
    say: Callable[[str], None],
    max_idle: float | None = None,
) -> dict[str, Any]:
    """Consume until stopped (or idle for max_idle seconds). Returns counters."""
    handlers = handlers_of(name)
    log = ctx.rt.log
    group = f"service-{name}"
    committed = log.committed(group)
    # Rebuild state from everything the group already processed, acting on none of it.
    replayed = [r for r in log.read(list(EVENT_TOPICS)) if r.offset < committed.get(r.tp, 0)]
    ctx.state = fold(_decoded(ctx, replayed, name))
    sub = log.subscribe(group, list(EVENT_TOPICS))
    stats = {"replayed": len(replayed), "handled": 0, "published": 0, "quarantined": 0}
    idle_since = time.monotonic()
    try:
        while max_idle is None or time.monotonic() - idle_since < max_idle:
            batch = sub.poll(timeout=0.5, max_records=500)
            if not batch:
                continue
            idle_since = time.monotonic()
            for event in _decoded(ctx, batch, name, stats):
                already = event.envelope.event_id in ctx.state.seen
                evolve(ctx.state, event)
                handler = handlers.get(event.EVENT_TYPE)
                if handler is None or already:
                    continue
                out = handler(ctx, event)
                stats["handled"] += 1
                if out:
                    ctx.publish(out)
                    stats["published"] += len(out)
                    say(f"{event.EVENT_TYPE} -> {', '.join(e.EVENT_TYPE for e in out)}")
            sub.commit()
    finally:
        sub.close()
    return stats


def run_projector(
    rt: Runtime, say: Callable[[str], None], max_idle: float | None = None
) -> Progress:
    """The audit projector as a service: catch up, then follow the log as consumer group
    service-projector until SIGTERM / SIGINT (or idle for max_idle seconds)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    last = {"applied": 0, "at": time.monotonic()}

    def on_batch(p: Progress) -> None:
        say(f"folded {p.applied - last['applied']:,} event(s); {p.applied:,} this run")
        last.update(applied=p.applied, at=time.monotonic())

    def should_stop() -> bool:
        idle = time.monotonic() - last["at"]
        return stop.is_set() or (max_idle is not None and idle >= max_idle)

    projector = Projector(rt.log, rt.views, rt.codec, signer=rt.signer)
    return projector.follow("service-projector", should_stop, on_batch)


def _decoded(
    ctx: Context, records: list[Any], service: str, stats: dict[str, int] | None = None
) -> list[Any]:
    out = []
    trust = ctx.rt.trust
    for r in records:
        try:
            event = decode_event(ctx.rt.codec, r.value)
            if trust.enabled and (problem := trust.check(r.value, r.sig, event.EVENT_TYPE).problem):
                # a forged or altered event: no service acts on it (`keel audit verify` names it)
                logger.warning("%s/%d/%d ignored: %s", r.topic, r.partition, r.offset, problem)
                continue
            out.append(event)
        except CodecError as exc:
            if stats is not None:  # quarantine once, when first met live, not on every replay
                ctx.rt.publish(
                    [
                        quarantine_event(
                            r, exc, service=service, code_version=service_code_version(service)
                        )
                    ]
                )
                stats["quarantined"] += 1
    return out
