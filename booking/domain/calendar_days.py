"""Calendar days between sessions (rules 5 and 6, the follow-up window; docs/rules.md).

The clinics count intervals on their calendar: 28 days after a session is any time on the
28th local date after it, whatever a DST change did in between. Each session is dated in its
own clinic's zone; a session recorded without a clinic (a past session at another provider)
is dated in the zone of the session it is compared with. Every rule that counts days between
sessions goes through days_apart() and first_instant_after(), so availability, booking,
reschedule, follow-up proposals and course counts agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Dated:
    """A session's start and the IANA zone of its clinic (None: recorded without a clinic)."""

    at: datetime
    zone: str | None = None


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(at: datetime, zone: str) -> date:
    return at.astimezone(_zone(zone)).date()


def date_of(session: Dated, default_zone: str) -> date:
    """The session's local date in its clinic's zone, or in `default_zone` when it has none."""
    return local_date(session.at, session.zone or default_zone)


def days_apart(a: Dated, b: Dated) -> int:
    """Calendar days between the two sessions' local dates, each in its own zone (never negative)."""
    a_zone = a.zone or b.zone or "UTC"
    return abs((date_of(b, a_zone) - date_of(a, a_zone)).days)


def first_instant(day: date, zone: str) -> datetime:
    """The first instant (UTC) of a local date in `zone`.

    Usually its midnight; where a DST change skips midnight (America/Santiago, America/Havana
    spring forward at 00:00) the instant the clocks jump, the first the date shows; a date a
    zone skipped entirely (Pacific/Apia, 30 December 2011) has none, so the next date's.
    """
    tz = _zone(zone)
    for _ in range(3):
        # fold=0 gives a skipped wall time the offset before the change: the jump itself.
        candidates = [datetime.combine(day, time(0, fold=fold), tz).astimezone(UTC) for fold in (0, 1)]
        on_day = [c for c in candidates if c.astimezone(tz).date() == day]
        if on_day:
            first = min(on_day)
            if first.astimezone(tz).time() != time(0):
                first = _first_showing(day, tz, first - timedelta(days=1), first)
            return first
        day += timedelta(days=1)
    raise ValueError(f"No instant of {day} in {zone}")  # pragma: no cover: no zone skips three dates


def _first_showing(day: date, tz: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The earliest second in (low, high] whose local date is `day` (for a jump that skips
    midnight and lands past 01:00: the fold=0 guess is then later than the jump)."""
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(tz).date() >= day:
            high = middle
        else:
            low = middle
    return high


def first_instant_after(session: Dated, days: int, zone: str) -> datetime:
    """The first instant, in `zone`, of the `days`-th local date after the session's own."""
    return first_instant(date_of(session, zone) + timedelta(days=days), zone)
