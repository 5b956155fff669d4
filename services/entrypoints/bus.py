"""The embedded bus with every service's handlers subscribed: what a command (CLI, Python
client, step, demo) records goes round the services inline on the embedded default."""

from __future__ import annotations

from keel.bootstrap import Runtime
from keel.pipeline import InProcessBus
from keel.project import Project
from keel_services.entrypoints.wiring import handlers


def build_bus(rt: Runtime, project: Project, actor: str) -> InProcessBus:
    """Subscribed in the composition root's order, unless `keel service run` processes do that
    job (KEEL_INLINE_SERVICES=false): then the bus only records and folds."""
    bus = InProcessBus(rt, project, actor)
    if rt.settings.inline_services:
        for table in handlers().values():
            for event_type, handler in table.items():
                bus.subscribe(event_type, handler)
    return bus
