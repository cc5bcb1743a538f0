"""The one clock of the domain, so tests can move time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo


def now() -> datetime:
    """The one "now" of the service: every rule, record and timestamp (the models' created_at and
    updated_at included) reads it, so a test that moves it moves them all."""
    return datetime.now(UTC)


def wall_now() -> datetime:
    """The real time, for the few instants another system checks against its own clock (a
    webhook's signed timestamp, a receiver's Retry-After date): a test's clock must not move them."""
    return datetime.now(UTC)


# The years any instant or date the service reads must fall in, as written (in its own offset).
# Far enough from datetime's limits (years 1 and 9999) that nothing done with a value, such as
# moving it to UTC, adding a day or a window, can overflow; wide enough for any booking,
# birth date or record a clinic keeps.
FIRST_YEAR, LAST_YEAR = 1900, 2200
RANGE_MESSAGE = f"Must be in the years {FIRST_YEAR} to {LAST_YEAR}."


def in_range(value: date | datetime) -> bool:
    return FIRST_YEAR <= value.year <= LAST_YEAR


def shown_in(moment: datetime, zone: tzinfo) -> datetime:
    """The instant on the zone's clock, as a person reads it (with the zone's offset then).

    Before a zone took up standard time its offset was local mean time, to the second
    (Amsterdam +00:19:32 until 1937, Monrovia -00:44:30 until 1972). RFC 3339 offsets have
    no seconds, and rounding them would move the instant, so such an instant is shown in UTC.
    """
    local = moment.astimezone(zone)
    offset = local.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        return moment.astimezone(UTC)
    return local
