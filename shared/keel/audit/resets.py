"""Trust resets (issue 33, item 3): a deliberate restore declared by the admin with
`keel audit reset-trust --reason`, recorded as a signed TrustReset. The views keep every reset
under one document so that every answer after one can say so in a line. Pure: no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.audit import keys

if TYPE_CHECKING:  # annotations only: answers read resets without the event classes
    from keel.events import generated as g

TRUST_RESETS = keys.TRUST_RESETS  # views: {"resets": [reset, ...]} oldest first


def reset_doc(e: g.TrustReset, **extra: Any) -> dict[str, Any]:
    """extra: where the trail holds it (recorded_at in the views, the position in verify)."""
    return {
        "event_id": e.envelope.event_id,
        "at": e.envelope.occurred_at.isoformat(),
        "by": e.envelope.actor,
        "reason": e.reason,
        "checkpoints_set_aside": [
            {"held_by": a.held_by, "origin": a.origin, "size": a.size, "root": a.root}
            for a in e.anchors
        ],
        **extra,
    }


def latest(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newest reset in a TRUST_RESETS document, with its line; None if trust never was."""
    resets = (doc or {}).get("resets") or []
    return {**resets[-1], "line": line(resets[-1]), "count": len(resets)} if resets else None


def line(reset: dict[str, Any]) -> str:
    """What every answer after a reset says."""
    return (
        f"trust reset at {str(reset['at'])[:19]} by {reset['by']}: {reset['reason']} "
        f"({len(reset['checkpoints_set_aside'])} earlier checkpoint(s) set aside)"
    )
