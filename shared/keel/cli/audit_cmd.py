"""`keel audit ...`: read the trail."""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import typer

from keel.audit.summary import summarize
from keel.bootstrap import bootstrap
from keel.cli.common import console, handled
from keel.codec import Codec, CodecError
from keel.events import decode_event
from keel.log.port import LogRecord
from keel.topics import EVENT_TOPICS

app = typer.Typer(
    help="The audit trail: what happened, when, by whom, and why.", no_args_is_help=True
)


def _line(codec: Codec, rec: LogRecord, json_out: bool) -> str:
    try:
        event = decode_event(codec, rec.value)
    except CodecError as exc:
        # A bad record is reported where it sits and the tail goes on.
        if json_out:
            return json.dumps(
                {
                    "topic": rec.topic,
                    "offset": rec.offset,
                    "error": type(exc).__name__,
                    "reason": str(exc),
                }
            )
        head = f"{rec.offset:>8}  {'-':<10} {'-':<9} {'UNDECODABLE':<26} {rec.key[:14]:<14}"
        return f"{head} {rec.topic}@{rec.offset}: {exc}"
    env = event.envelope
    if json_out:
        doc: dict[str, Any] = {"topic": rec.topic, "offset": rec.offset, **event.to_avro()}
        return json.dumps(doc, default=_jsonable, sort_keys=True)
    when = env.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    head = f"{rec.offset:>8}  {when:<20} {env.event_type:<26} {env.subject[:14]:<14}"
    return f"{head} {summarize(event)}"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


@app.command("tail")
@handled
def tail(
    follow: bool = typer.Option(
        False, "--follow", "-f", help="keep printing new events (Ctrl-C stops)"
    ),
    json_out: bool = typer.Option(False, "--json", help="one JSON object per line"),
    last: int = typer.Option(0, "--last", "-n", min=0, help="only the last N events (0: all)"),
    topic: list[str] = typer.Option(
        [], "--topic", help=f"only these topics ({', '.join(EVENT_TOPICS)}); repeatable"
    ),
    idle_exit: float = typer.Option(
        0.0, "--idle-exit", hidden=True, help="stop following after N idle seconds"
    ),
) -> None:
    """One readable line per event: offset, time, type, subject, key fields."""
    topics = topic or list(EVENT_TOPICS)
    with bootstrap(create=False) as rt:
        # Plain reads from positions, no consumer group: tailing never moves anyone's offsets,
        # and a read ends at the log's end, so the backlog is complete on every backend.
        backlog: deque[LogRecord] | list[LogRecord] = deque(maxlen=last) if last else []
        positions: dict[tuple[str, int], int] = {}
        for rec in rt.log.read(topics):
            backlog.append(rec)
            positions[rec.tp] = rec.offset + 1
        _emit(rt.codec, backlog, json_out)
        idle = 0.0
        try:
            while follow and not (idle_exit and idle >= idle_exit):
                new = list(rt.log.read(topics, positions))
                for rec in new:
                    positions[rec.tp] = rec.offset + 1
                _emit(rt.codec, new, json_out)
                idle = 0.0 if new else idle + 0.5
                if not new:
                    time.sleep(0.5)
        except KeyboardInterrupt:
            console.print("stopped")


def _emit(codec: Codec, records: Iterable[LogRecord], json_out: bool) -> None:
    for rec in records:
        sys.stdout.write(_line(codec, rec, json_out) + "\n")
    sys.stdout.flush()
