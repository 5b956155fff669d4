"""Run the services' handlers in one process on the embedded default.

The bus appends every event to the log, brings the read model (the audit views) up to the log's
end, and hands the event to the handlers subscribed to its type; their events go round the
same loop until nothing is left. No command refolds the log: the views are kept with their
tracking positions, so catching up reads only what was appended since. On Kafka each service
runs the same handlers in its own consumer group.

The library knows no handler: the application's composition root subscribes its services'
handlers to a bus it builds (the root's `build_bus`), so `keel` never names its application.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from keel.audit.reads import Reads
from keel.bootstrap import Runtime
from keel.events import Event
from keel.project import Project


@dataclass
class Context:
    rt: Runtime
    project: Project
    read: Reads  # the one read surface (keel.audit.reads)
    actor: str
    correlation_id: str = "-"
    publish: Callable[[Sequence[Event]], None] = field(default=lambda events: None)


Handler = Callable[[Context, Event], list[Event]]


PROJECTOR_WAIT = 120.0  # seconds a command waits for the projector service (read-only views)


class InProcessBus:
    def __init__(self, rt: Runtime, project: Project, actor: str) -> None:
        from keel.audit.projectors import projector_for

        self.handlers: dict[str, list[Handler]] = {}
        self.projector = projector_for(rt, checkpoints="embedded")
        self.ctx = Context(rt, project, Reads(rt.views), actor, publish=self.publish)
        self._queue: deque[Event] = deque()
        self._draining = False
        self.catch_up()  # what earlier commands recorded, before anything reads the views

    def catch_up(self, checkpoint: bool = False) -> None:
        """Fold what the log holds beyond the views' tracking (usually just this command's
        own events); a checkpoint is published once, when the command is done (close).
        Views this process may only read: wait for the projector service to fold them."""
        views = self.ctx.rt.views
        if getattr(views, "read_only", False):
            from keel.audit.freshness import require_projector
            from keel.topics import EVENT_TOPICS

            log = self.ctx.rt.log
            needed = log.end_offsets(EVENT_TOPICS)
            require_projector(log, views, self.projector.name, needed, PROJECTOR_WAIT)
            return
        self.projector.run(checkpoint=checkpoint)

    def subscribe(self, event_type: str, handler: Handler) -> None:
        self.handlers.setdefault(event_type, []).append(handler)

    def publish(self, events: Sequence[Event]) -> None:
        """Append, fold into the views, then dispatch (breadth first) until no handler has
        anything to add."""
        if not events:
            return
        self.ctx.rt.publish(events)
        self.catch_up()
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

    def close(self) -> None:
        """The views at the log's end and a checkpoint covering what this command recorded."""
        self.catch_up(checkpoint=True)
