"""Per-principal writer routing on a secured broker (keel.secure).

Each event goes in as its writer's principal where this process holds that principal's
credentials (a developer's CLI running the services inline writes as each service), so the
broker's ACLs see the same writer the signature names. Runs of events with one principal are
one transaction each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from keel.log.port import OutgoingEvent
from keel.secure.credentials import writer_principal

H = TypeVar("H")


def runs(whose: Sequence[str]) -> list[tuple[str, int, int]]:
    """(principal, start, stop) of each run of consecutive items with one principal."""
    out: list[tuple[str, int, int]] = []
    start = 0
    for i in range(1, len(whose) + 1):
        if i == len(whose) or whose[i] != whose[start]:
            out.append((whose[start], start, i))
            start = i
    return out


def plan(
    secrets: Any, own: str, events: Sequence[OutgoingEvent]
) -> list[tuple[str, Sequence[OutgoingEvent]]] | None:
    """The batches to append and the principal each goes in as; None: every event is `own`'s
    (an open broker, or writers this process holds no credentials for)."""
    if secrets is None:
        return None
    # one lookup per writer, not per event (each looks for a credential file)
    principal_of = {w: writer_principal(secrets, w, own) for w in {e.writer for e in events}}
    whose = [principal_of[e.writer] for e in events]
    if all(w == own for w in whose):
        return None
    return [(p, events[a:b]) for p, a, b in runs(whose)]


def role_principal(secrets: Any, role: str, own: str) -> str:
    """Who a stable writer role (projector-NAME) writes as: the role's service principal
    (projector) where this process holds it, else this handle's own."""
    if secrets is None:
        return own
    return writer_principal(secrets, role.split("-", 1)[0], own)


class Siblings(Generic[H]):
    """This process's handles for the other principals it holds, made on first use."""

    def __init__(self, make: Callable[[str], H]) -> None:
        self._make = make
        self._handles: dict[str, H] = {}

    def get(self, principal: str) -> H:
        handle = self._handles.get(principal)
        if handle is None:
            handle = self._handles[principal] = self._make(principal)
        return handle

    def all(self) -> list[H]:
        return list(self._handles.values())
