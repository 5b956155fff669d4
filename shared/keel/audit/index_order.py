"""Where an event sits in a time index: the one order every reader uses (decision 0020).

Two indexes score events by their business time (ms): `serving:{family}:{env}` (ModelDeployed)
and `registry:{family}` (the registry's decisions). Events with the same business time are
ordered by when the log recorded them: the member leads with the recorded time and the log
position, fixed width, then the event ID:

    0001767225600123.00000000000000004711@<event_id>

Both stores order equal scores by the member's bytes (SQLite's BINARY collation, Redis's sorted
sets), so the index's own order is (business time, recorded time, log position): a floor lookup,
a range, a reverse page and `entry_order` below all agree, and no reader sorts by event ID.
One family/env's deployments, and its decisions, share a subject key, hence one Kafka
partition, so their offsets compare; the embedded log's offsets are one global sequence. The
recorded time leads so that entries stay in recorded order across partitions (a family's
environments, a topic given more partitions later); only within one millisecond do offsets of
different partitions meet, and then the order is arbitrary but fixed: a function of the log.
"""

from __future__ import annotations

from keel.audit import keys
from keel.views.port import Entry, member_key

_RECORDED_DIGITS = 16  # ms: past the year 300000
_POSITION_DIGITS = 20  # a 64-bit offset


def member(event_id: str, recorded_ms: int, position: int) -> str:
    """The index member of an event recorded at `recorded_ms`, at log `position`."""
    # A recorded time before 1970 only stands in for an unknown one (the business time of a
    # record from before logs stamped it); negative numbers would not sort as text: first.
    return (
        f"{max(recorded_ms, 0):0{_RECORDED_DIGITS}d}.{max(position, 0):0{_POSITION_DIGITS}d}"
        f"@{event_id}"
    )


def event_id(entry_member: str) -> str:
    """The event ID a member names (a bare event ID names itself)."""
    return member_key(entry_member)


def deployment_key(entry_member: str) -> str:
    """The document of a `serving:` member."""
    return keys.deployment(event_id(entry_member))


def decision_key(entry_member: str) -> str:
    """The document of a `registry:` member."""
    return keys.decision(event_id(entry_member))


def recorded_ms(entry_member: str) -> int | None:
    """When the log recorded the event, read from the member alone; None for a bare event ID
    (a member written by hand, or views from before members carried it)."""
    head, sep, _ = entry_member.rpartition("@")
    return int(head.partition(".")[0]) if sep else None


def entry_order(entry: Entry) -> tuple[float, str]:
    """The comparator: (business time, then recorded time and position via the member) - the
    index's own order, for sorting entries gathered from several reads."""
    return entry[1], entry[0]
