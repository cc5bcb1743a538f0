"""External busy times: a practitioner's other calendars, by URL or uploaded file.

Their opaque events, recurring ones included (RRULE, RDATE, EXDATE and moved or
cancelled occurrences, expanded by recurring-ical-events), block availability and
booking exactly like time off. Occurrences are expanded ahead of time into
`external_busy` rows, so every read is an index range. A URL is fetched again by the
scheduler; a fetch or parse that fails keeps the last good copy (and its busy times)
and records the error.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import sqlalchemy as sa
import urllib3
from sqlalchemy.orm import Session

from models import ExternalBusy, ExternalCalendar, Practitioner

from . import net
from .errors import InvalidInput
from .webhooks import check_url

HORIZON = timedelta(days=400)  # expanded this far ahead: past the availability horizon, with room
LOOKBACK = timedelta(days=1)
MAX_BYTES = 2 * 1024 * 1024
MAX_OCCURRENCES = 20_000
FETCH_DEADLINE = 15.0  # seconds for a whole fetch: lookup, connect, TLS, request, headers and body


def parse(text: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as error:
        raise InvalidInput({"ics": [f"Not an iCalendar document: {error}"[:300]]}) from None
    if calendar.name != "VCALENDAR":
        raise InvalidInput({"ics": ["Not an iCalendar document: no VCALENDAR."]})
    return calendar


def occurrences(calendar: icalendar.Calendar, start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple]:
    """Busy [starts_at, ends_at) in UTC: opaque, not cancelled. Floating times and all-day events
    are read in the calendar's X-WR-TIMEZONE, else `zone`."""
    try:
        zone = ZoneInfo(str(calendar.get("x-wr-timezone", zone.key)))
    except (ZoneInfoNotFoundError, ValueError):
        pass
    found = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        if str(event.get("transp", "OPAQUE")).upper() == "TRANSPARENT":
            continue
        if str(event.get("status", "")).upper() == "CANCELLED":
            continue
        begin, finish = event.decoded("dtstart"), _end(event)
        interval = (_instant(begin, zone), _instant(finish, zone))
        if interval[0] < interval[1]:
            found.append(interval)
        if len(found) > MAX_OCCURRENCES:
            raise InvalidInput({"ics": [f"More than {MAX_OCCURRENCES} busy occurrences within {HORIZON.days} days."]})
    return sorted(set(found))


def _end(event):
    if "dtend" in event:
        return event.decoded("dtend")
    start = event.decoded("dtstart")
    if "duration" in event:
        return start + event.decoded("duration")
    return start + timedelta(days=1) if not isinstance(start, datetime) else start


def _instant(value, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):  # a date: the whole day, on the calendar's clock
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


def practitioner_zone(practitioner: Practitioner) -> ZoneInfo:
    clinic = min(practitioner.clinics, key=lambda c: c.id, default=None)
    return ZoneInfo(clinic.timezone if clinic else "UTC")


def expand(db: Session, calendar_row: ExternalCalendar, now: datetime) -> int:
    """Replace the calendar's busy rows by the occurrences of its content (now - 1 day .. + HORIZON)."""
    practitioner = db.get(Practitioner, calendar_row.practitioner_id)
    start, end = now - LOOKBACK, now + HORIZON
    busy = occurrences(parse(calendar_row.content), start, end, practitioner_zone(practitioner)) \
        if calendar_row.content else []
    db.execute(sa.delete(ExternalBusy).where(ExternalBusy.calendar_id == calendar_row.id))
    db.add_all(ExternalBusy(calendar_id=calendar_row.id, practitioner_id=calendar_row.practitioner_id,
                            starts_at=s, ends_at=e) for s, e in busy)
    calendar_row.expanded_until = end
    return len(busy)


def fetch(url: str, http: urllib3.PoolManager | None = None, *, allow_private: bool) -> str:
    """The document at `url`, within FETCH_DEADLINE and MAX_BYTES; raises InvalidInput (kept as the
    calendar's error) on any failure. `http` is no longer used (the fetch connects to the address
    it checked); it is accepted for the callers."""
    try:
        response = net.request("GET", url, allow_private=allow_private, deadline=FETCH_DEADLINE,
                               max_bytes=MAX_BYTES,
                               headers={"user-agent": "Needlebook-Calendar/1", "accept": "text/calendar"})
    except net.RequestFailed as failure:
        raise InvalidInput({"url": [f"Could not fetch the calendar: {failure}"[:300]]}) from None
    if response.status != 200:
        raise InvalidInput({"url": [f"Fetching the calendar gave HTTP {response.status}."]})
    return response.body.decode("utf-8", errors="replace")


def add(db: Session, org: str, practitioner: Practitioner, name: str, *, url: str | None, ics: str | None,
        now: datetime, http: urllib3.PoolManager, allow_private: bool) -> ExternalCalendar:
    """A URL is fetched now (a failure is recorded on the calendar, and the scheduler retries);
    a file must parse, or nothing is written."""
    if (url is None) == (ics is None):
        raise InvalidInput({"url": ["Give either url or ics."], "ics": ["Give either url or ics."]})
    row = ExternalCalendar(organization_id=org, practitioner_id=practitioner.id, name=name, source_url=url)
    if url is not None:
        check_url(url, allow_private=allow_private)
        db.add(row)
        db.flush()
        refresh(db, row, now, http, allow_private=allow_private)
    else:
        parse(ics)
        row.content, row.fetched_at = ics, now
        db.add(row)
        db.flush()
        expand(db, row, now)
    return row


def replace_file(db: Session, row: ExternalCalendar, ics: str, now: datetime) -> None:
    if row.source_url is not None:
        raise InvalidInput({"ics": ["This calendar is read from its URL."]})
    parse(ics)
    row.content, row.fetched_at, row.last_error, row.last_error_at = ics, now, None, None
    expand(db, row, now)


def refresh(db: Session, row: ExternalCalendar, now: datetime, http: urllib3.PoolManager, *,
            allow_private: bool) -> bool:
    """Fetch and expand a URL calendar (in the caller's transaction)."""
    text, error = download(row.source_url, http, allow_private=allow_private)
    return apply(db, row, text, error, now)


def download(url: str, http: urllib3.PoolManager, *, allow_private: bool) -> tuple[str | None, str | None]:
    """(the document, None) if it fetched and parsed, else (None, why): no database involved,
    so the scheduler holds no transaction open while a remote server answers."""
    try:
        text = fetch(url, http, allow_private=allow_private)
        parse(text)
    except InvalidInput as failure:
        return None, next(iter(failure.errors.values()))[0][:500]
    return text, None


def apply(db: Session, row: ExternalCalendar, text: str | None, error: str | None, now: datetime) -> bool:
    """Store a fetch's result; on failure keep the last good copy and record why."""
    if error is not None:
        row.last_error, row.last_error_at = error, now
        if row.expanded_until is None or row.expanded_until < now + HORIZON - timedelta(days=30):
            expand(db, row, now)  # keep the rolling horizon of the last good copy
        return False
    if text is not None:
        row.content, row.fetched_at, row.last_error, row.last_error_at = text, now, None, None
    expand(db, row, now)
    return True


def remove(db: Session, row: ExternalCalendar, now: datetime) -> None:
    row.archived_at = now
    db.execute(sa.delete(ExternalBusy).where(ExternalBusy.calendar_id == row.id))


def due_for_refresh(db: Session, now: datetime, every: timedelta) -> list[str]:
    """URL calendars not fetched for `every`, and file calendars whose expansion needs rolling on."""
    return list(db.scalars(sa.select(ExternalCalendar.id).where(
        ExternalCalendar.archived_at.is_(None),
        sa.or_(
            sa.and_(ExternalCalendar.source_url.is_not(None),
                    sa.or_(ExternalCalendar.fetched_at.is_(None), ExternalCalendar.fetched_at <= now - every),
                    sa.or_(ExternalCalendar.last_error_at.is_(None), ExternalCalendar.last_error_at <= now - every)),
            ExternalCalendar.expanded_until <= now + HORIZON - timedelta(days=30),
        )).order_by(ExternalCalendar.id).limit(100)))
