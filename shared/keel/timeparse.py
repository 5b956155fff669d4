"""Times on the command line: ISO 8601, with or without a zone (UTC assumed, and said so)."""

from __future__ import annotations

from datetime import UTC, datetime

from keel.errors import KeelError


def parse_time(text: str) -> tuple[datetime, bool]:
    """(aware datetime, True if UTC was assumed because no zone was given)."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise KeelError(
            f"{text!r} is not an ISO 8601 time",
            hint="use e.g. 2026-07-01, 2026-07-01T12:00 (UTC assumed) or 2026-07-01T12:00+02:00",
        ) from None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC), True
    return when.astimezone(UTC), False
