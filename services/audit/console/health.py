"""The console's health page (checkpoint, counts, verification on demand) and its live tail of
the log (server-sent events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from keel.audit.summary import summarize
from keel.audit.verify_run import checkpoints_tail
from keel.bootstrap import Runtime
from keel.codec import CodecError
from keel.events import decode_event
from keel.topics import EVENT_TOPICS
from keel.views.port import ViewStore
from keel_services.audit.console import pages
from keel_services.audit.console.render import BASE, Renderer, secured

TAIL_BACKLOG = 30  # events a new live tail starts with
TAIL_SECONDS = 300.0  # one stream's life; the browser's EventSource reconnects by itself


def router(r: Renderer, store: ViewStore, fresh_first: Any) -> APIRouter:
    api = APIRouter()

    @api.get(BASE + "health")
    def health(verify: int = 0, freshness: Any = fresh_first) -> Any:
        report = r.client.verify().model_dump(mode="json") if verify else None
        last = checkpoints_tail(r.rt)
        checkpoint = (
            {
                "at": last.envelope.occurred_at.isoformat(),
                "event_id": last.envelope.event_id,
                "trees": [t.note for t in last.trees],
            }
            if last is not None
            else None
        )
        return r.page(
            "health.html.j2",
            h=pages.health(store),
            v=report,
            checkpoint=checkpoint,
            freshness=freshness,
        )

    @api.get(BASE + "tail")
    def tail(request: Request) -> StreamingResponse:
        stream = StreamingResponse(_tail(r.rt, request), media_type="text/event-stream")
        return secured(stream)

    return api


def _line(rt: Runtime, rec: Any) -> str:
    try:
        event = decode_event(rt.codec, rec.value)
    except CodecError as exc:
        return f"{rec.topic}/{rec.offset} UNDECODABLE: {exc}"
    env = event.envelope
    when = env.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    return f"{when} {env.event_type} {env.subject[:24]} {summarize(event)}"


async def _tail(rt: Runtime, request: Request, seconds: float = TAIL_SECONDS) -> AsyncIterator[str]:
    """The newest TAIL_BACKLOG events, then new ones as they are recorded, for `seconds` or
    until the browser goes away; reads from positions (no consumer group), so watching moves
    nobody's offsets. Log reads run in a worker thread; the wait between them is async, so an
    open tail never holds a thread or the server's shutdown."""
    topics = list(EVENT_TOPICS)

    def backlog() -> tuple[dict[Any, int], list[str]]:
        # Each topic's newest records on their own, capped: offsets need not be dense (the
        # embedded log numbers records across topics), so "end - N" of a quiet topic can lie
        # far back, and one read from there across every topic would walk the whole log.
        ends = rt.log.end_offsets(topics)
        recs = [
            rec
            for tp, end in ends.items()
            for rec in rt.log.read([tp[0]], {tp: max(0, end - TAIL_BACKLOG)}, TAIL_BACKLOG)
        ]
        recs.sort(key=lambda r: r.timestamp_ms)
        return dict(ends), [_line(rt, r) for r in recs[-TAIL_BACKLOG:]]

    def newer(positions: dict[Any, int]) -> list[str]:
        lines = []
        for rec in rt.log.read(topics, positions):
            positions[rec.tp] = rec.offset + 1
            lines.append(_line(rt, rec))
        return lines

    positions, lines = await asyncio.to_thread(backlog)
    for line in lines:
        yield f"data: {line}\n\n"
    yield "event: status\ndata: caught up: new events appear below as they are recorded\n\n"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not await request.is_disconnected():
        lines = await asyncio.to_thread(newer, positions)
        for line in lines:
            yield f"data: {line}\n\n"
        if not lines:
            yield ": idle\n\n"  # a comment: keeps proxies from closing the stream
            await asyncio.sleep(0.5)
