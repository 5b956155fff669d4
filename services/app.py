"""Wiring: one place subscribes every service's handlers to the in-process bus."""

from __future__ import annotations

from keel.bootstrap import Runtime
from keel.pipeline import InProcessBus
from keel.project import Project
from services.deploy import handlers as deploy
from services.promote import handlers as promote


def build_bus(rt: Runtime, project: Project, actor: str) -> InProcessBus:
    bus = InProcessBus(rt, project, actor)
    if not rt.settings.inline_services:
        return bus  # separate `keel service run` processes react to the events
    for module in (promote, deploy):
        for event_type, handler in module.HANDLERS.items():
            bus.subscribe(event_type, handler)
    return bus
