"""Run one event-driven service in its own process and consumer group (`keel service run NAME`).

The service hands the event types it subscribes to to its handlers (the composition root's
table, keel_services.entrypoints.wiring), which read the one read model (keel.audit.reads). It
starts at the group's committed positions, folds nothing at start, and commits after each
batch: a crash re-delivers at most the last batch, and handlers skip work the read model shows
as recorded.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from keel import telemetry
from keel.audit.freshness import require_projector
from keel.audit.projector import Progress
from keel.codec import CodecError
from keel.consume import quarantine_event
from keel.errors import KeelError
from keel.events import Event, decode_event
from keel.log.port import LogRecord, TopicPartition
from keel.pipeline import Context
from keel.topics import EVENT_TOPICS
from keel_services.entrypoints.container import App
from keel_services.entrypoints.wiring import PRODUCERS, handlers

logger = logging.getLogger(__name__)

PROJECTOR = "projector"
LAG_EVERY = 5.0  # seconds between consumer-lag readings (keel_consumer_lag)
PROJECTOR_WAIT = 120.0  # seconds a service waits for the projector before it stops


def runnable() -> tuple[str, ...]:
    """Names `keel service run` accepts for consumer-group services."""
    return (*handlers(), PROJECTOR)


def run_service(
    app: App,
    name: str,
    say: Callable[[str], None],
    max_idle: float | None = None,
) -> dict[str, Any]:
    """Consume until stopped (or idle for max_idle seconds). Returns counters."""
    (table,) = handlers((name,)).values()  # an unknown name is refused before anything opens
    with app.pipeline() as ctx:
        return _consume(app, ctx, name, table, say, max_idle)


def _consume(
    app: App,
    ctx: Context,
    name: str,
    table: dict[str, Any],
    say: Callable[[str], None],
    max_idle: float | None,
) -> dict[str, Any]:
    log = ctx.rt.log
    group = f"service-{name}"
    # The service reads the one read model (the audit views). Before it acts on an event, the
    # views must reach past that event and past everything this service recorded (killed
    # between recording and committing, it finds its own earlier outputs there and records
    # nothing twice): the projector service usually got there first; if not, this process
    # folds the rest itself, without publishing checkpoints (that stays the projector's job).
    views = app.projector(log=log, checkpoints="none")
    needed: dict[TopicPartition, int] = {}

    def reach(tp: TopicPartition, next_offset: int) -> None:
        needed[tp] = max(needed.get(tp, 0), next_offset)

    def publish(events: Sequence[Event]) -> None:
        for rec in ctx.rt.publish(events):
            reach(rec.tp, rec.offset + 1)

    ctx.publish = publish
    sub = log.subscribe(group, list(EVENT_TOPICS))
    stats = {"handled": 0, "published": 0, "quarantined": 0, "failed": 0, "folded_here": 0}
    handled: set[str] = set()  # an event appended twice (same event_id) is acted on once
    idle_since = time.monotonic()
    lag_at = 0.0
    try:
        while max_idle is None or time.monotonic() - idle_since < max_idle:
            batch = sub.poll(timeout=0.5, max_records=500)
            if time.monotonic() - lag_at >= LAG_EVERY:
                lag_at = time.monotonic()
                telemetry.record_lag(name, log.end_offsets(EVENT_TOPICS), log.committed(group))
            if not batch:
                continue
            idle_since = time.monotonic()
            for rec, event in _decoded(ctx, batch, name, stats):
                handler = table.get(event.EVENT_TYPE)
                eid = event.envelope.event_id
                if handler is None or eid in handled:
                    continue
                handled.add(eid)
                reach(rec.tp, rec.offset + 1)
                tracking = ctx.rt.views.tracking(views.name)
                if any(tracking.get(tp, 0) < o for tp, o in needed.items()):
                    if getattr(ctx.rt.views, "read_only", False):
                        # the projector service folds these views: wait for it (bounded); stop
                        # rather than decide on a read model that is behind (nothing committed)
                        require_projector(
                            ctx.rt.log, ctx.rt.views, views.name, needed, PROJECTOR_WAIT
                        )
                    else:
                        stats["folded_here"] += views.run(checkpoint=False).applied
                try:
                    out = handler(ctx, event)
                except KeelError as exc:  # refused: logged, and the service goes on
                    stats["failed"] += 1
                    telemetry.FAILED.labels(name, event.EVENT_TYPE).inc()
                    logger.error("%s %s: %s", event.EVENT_TYPE, eid, exc)
                    continue
                stats["handled"] += 1
                telemetry.EVENTS.labels(name, event.EVENT_TYPE).inc()
                if out:
                    publish(out)
                    stats["published"] += len(out)
                    say(f"{event.EVENT_TYPE} -> {', '.join(e.EVENT_TYPE for e in out)}")
            sub.commit()
    finally:
        sub.close()
    return stats


def run_projector(app: App, say: Callable[[str], None], max_idle: float | None = None) -> Progress:
    """The audit projector as a service: catch up, then follow the log as consumer group
    service-projector until SIGTERM / SIGINT (or idle for max_idle seconds)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    last = {"applied": 0, "at": time.monotonic()}

    def on_batch(p: Progress) -> None:
        # each batch's size (larger while far behind: keel.audit.batching) and its seconds
        # since the one before (the lease is renewed between batches: LEASE_TTL_S bounds them)
        now = time.monotonic()
        say(
            f"folded {p.applied - last['applied']:,} event(s) in {now - last['at']:.1f} s; "
            f"{p.applied:,} this run"
        )
        last.update(applied=p.applied, at=now)

    from keel.audit import snapshot_store
    from keel.audit.snapshot import Periodic, snapshot_dir

    # views snapshots a new audit API replica starts from (issue 35), between batches; on a
    # shared log also in the artifact store, recorded on the log (replicas sharing no home)
    rt = app.rt
    stored = (lambda p: snapshot_store.record(rt, p)) if snapshot_store.wanted(rt) else None
    snapshots = Periodic(rt.views, snapshot_dir(rt.settings), rt.signer, stored=stored)

    def should_stop() -> bool:
        idle = time.monotonic() - last["at"]
        if (made := snapshots.maybe(idle)) is not None:
            say(f"views snapshot -> {made}")
        return stop.is_set() or (max_idle is not None and idle >= max_idle)

    projector = app.projector()
    return projector.follow("service-projector", should_stop, on_batch)


def _decoded(
    ctx: Context, records: list[Any], service: str, stats: dict[str, int] | None = None
) -> list[tuple[LogRecord, Any]]:
    out = []
    trust = ctx.rt.trust
    for r in records:
        try:
            event = decode_event(ctx.rt.codec, r.value)
            verdict = trust.check(r.value, r.sig, event.EVENT_TYPE) if trust.enabled else None
            if verdict and (problem := trust.admit(r.tp, r.offset, verdict).problem):
                # a forged or altered event: no service acts on it (`keel audit verify` names it)
                logger.warning("%s/%d/%d ignored: %s", r.topic, r.partition, r.offset, problem)
                continue
            out.append((r, event))
        except CodecError as exc:
            if stats is not None:  # quarantine once, when first met live, not on every replay
                ctx.rt.publish(
                    [
                        quarantine_event(
                            r,
                            exc,
                            service=PRODUCERS[service].name,
                            code_version=PRODUCERS[service].code_version,
                        )
                    ]
                )
                stats["quarantined"] += 1
    return out
