"""Times on the command line: ISO 8601, with or without a zone (UTC assumed, and said so)."""

from __future__ import annotations

from datetime import UTC, datetime

from keel.errors import KeelError

# Times are stored as milliseconds since the epoch (int64) and compared in UTC: anything that
# cannot be both is refused here rather than overflowing deeper in (a 500, a traceback).
# How far a writer's clock may run ahead of the log's: a business time later than now by more
# is refused, and an event recorded later than its business time by more is "backdated".
CLOCK_SKEW_MS = 5 * 60 * 1000
FIRST = datetime(1900, 1, 1, tzinfo=UTC)
LAST = datetime(9000, 1, 1, tzinfo=UTC)


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
    assumed = when.tzinfo is None
    try:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000 UTC: OverflowError
        when = when.replace(tzinfo=UTC) if assumed else when.astimezone(UTC)
        inside = FIRST <= when <= LAST
    except OverflowError:
        inside = False
    if not inside:
        raise KeelError(
            f"{text!r} is outside the times Keel records ({FIRST:%Y-%m-%d} to {LAST:%Y-%m-%d})",
            hint="give a time between those dates",
        )
    return when, assumed


def business_time(text: str | None, now: datetime | None = None) -> tuple[datetime, bool]:
    """The business time of something being recorded: `text` (default now), never later than
    now plus the clock-skew allowance. Earlier is allowed (imports, the demo) and shows as
    backdated in answers, since the log stamps when it was recorded."""
    now = now or datetime.now(UTC)
    if text is None:
        return now, False
    when, assumed = parse_time(text)
    if (when - now).total_seconds() * 1000 > CLOCK_SKEW_MS:
        raise KeelError(
            f"{text!r} is in the future: facts are recorded when they happen, not ahead of time",
            hint=f"give a time up to {CLOCK_SKEW_MS // 60_000} minutes ahead of now (clock "
            "skew) or in the past; past times are recorded as backdated",
        )
    return when, assumed
