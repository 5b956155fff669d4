"""Run the services' handlers in one process on the embedded default.

The bus appends every event to the log, folds it into the audit state the handlers read, and
hands it to the handlers subscribed to its type; their events go round the same loop until
nothing is left. On Kafka each service runs the same handlers in its own consumer group.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from keel.audit.folds import AuditState, evolve, fold
from keel.bootstrap import Runtime
from keel.consume import trusted_events
from keel.events import Event
from keel.project import Project


@dataclass
class Context:
    rt: Runtime
    project: Project
    state: AuditState
    actor: str
    correlation_id: str = "-"
    publish: Callable[[Sequence[Event]], None] = field(default=lambda events: None)


Handler = Callable[[Context, Event], list[Event]]


def _decodable(rt: Runtime) -> Iterator[Event]:
    """Every event of the log that decodes and whose signature checks; undecodable or forged
    records are reported by `keel audit verify` and must not stop a command from starting."""
    return trusted_events(rt.codec, rt.trust, rt.log.read())


def build_bus(rt: Runtime, project: Project, actor: str) -> InProcessBus:
    """The embedded bus with every service's handlers subscribed, in the composition root's
    order (unless `keel service run` processes do that job: KEEL_INLINE_SERVICES=false)."""
    from keel.wiring import handlers

    bus = InProcessBus(rt, project, actor)
    if rt.settings.inline_services:
        for table in handlers().values():
            for event_type, handler in table.items():
                bus.subscribe(event_type, handler)
    return bus


class InProcessBus:
    def __init__(self, rt: Runtime, project: Project, actor: str) -> None:
        self.handlers: dict[str, list[Handler]] = {}
        state = fold(_decodable(rt))
        self.ctx = Context(rt, project, state, actor, publish=self.publish)
        self._queue: deque[Event] = deque()
        self._draining = False

    def subscribe(self, event_type: str, handler: Handler) -> None:
        self.handlers.setdefault(event_type, []).append(handler)

    def publish(self, events: Sequence[Event]) -> None:
        """Append, fold, then dispatch (breadth first) until no handler has anything to add."""
        if not events:
            return
        self.ctx.rt.publish(events)
        for e in events:
            evolve(self.ctx.state, e)
        self._queue.extend(events)
        if self._draining:
            return  # the outer publish call's loop will reach them
        self._draining = True
        try:
            while self._queue:
                event = self._queue.popleft()
                for handler in self.handlers.get(event.EVENT_TYPE, []):
                    self.publish(handler(self.ctx, event))
        finally:
            self._draining = False
