"""External busy times: a practitioner's other calendars, by URL or uploaded file.

Their opaque events, recurring ones included (RRULE, RDATE, EXDATE and moved or
cancelled occurrences, expanded by recurring-ical-events), block availability and
booking exactly like time off. Occurrences are expanded ahead of time into
`external_busy` rows, so every read is an index range. A URL is fetched again by the
scheduler; a fetch or parse that fails keeps the last good copy (and its busy times)
and records the error.

The content is untrusted: it is parsed and expanded under an occurrence bound and a
time bound (MAX_OCCURRENCES, EXPANSION_SECONDS), and, like the fetch, with no database
transaction open; only storing the rows worked out (`store`, `add`, `apply`) writes.
"""

from __future__ import annotations

import ctypes
import threading
import time as monotonic_clock
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.integrations import net
from booking.integrations.webhooks import check_url
from booking.services.changes import load_for_change
from models import ExternalBusy, ExternalCalendar, Practitioner

HORIZON = timedelta(days=400)  # expanded this far ahead: past the availability horizon, with room
LOOKBACK = timedelta(days=1)
MAX_BYTES = 2 * 1024 * 1024
MAX_OCCURRENCES = 20_000  # produced, busy or not
EXPANSION_SECONDS = 2.0  # wall time for parsing and expanding one calendar
WINDOW = timedelta(days=30)  # expanded a window at a time, so the bounds stop it early
FIRST_YEAR, LAST_YEAR = 1900, 2200  # instants outside are a mistake (or an attack), not a calendar
FETCH_DEADLINE = 15.0  # seconds for a whole fetch: lookup, connect, TLS, request, headers and body


class BadCalendar(ValueError):
    """A document we cannot use, with why in a sentence for the user (it names the bound it breaks)."""


@dataclass(frozen=True)
class Expansion:
    """A calendar's busy [starts_at, ends_at) in UTC, worked out up to `until`: plain data, no database."""

    busy: list[tuple[datetime, datetime]]
    until: datetime


def parse(text: str) -> icalendar.Calendar:
    try:
        return read(text)
    except BadCalendar as error:
        raise InvalidInput({"ics": [str(error)]}) from None


def read(text: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except RecursionError:
        raise BadCalendar("Not an iCalendar document: its components are nested too deeply.") from None
    except Exception as error:  # noqa: BLE001 - the parser's errors are many and untyped: all mean "malformed"
        raise BadCalendar(f"Not an iCalendar document: {error}"[:300]) from None
    if getattr(calendar, "name", None) != "VCALENDAR":
        raise BadCalendar("Not an iCalendar document: no VCALENDAR.")
    return calendar


def expansion(text: str, now: datetime, zone: ZoneInfo) -> Expansion:
    """Parse and expand a document for the window around `now`, under the occurrence and time bounds.

    Untrusted content, so it runs outside any database transaction: callers store the result in a
    short one of their own (`store`)."""
    start, end = now - LOOKBACK, now + HORIZON
    try:
        with _deadline(EXPANSION_SECONDS):
            return Expansion(occurrences(read(text), start, end, zone), end)
    except _Overrun:
        raise BadCalendar(
            f"Expanding the calendar took longer than the limit of {EXPANSION_SECONDS:g} s; "
            "simplify its recurrence rules."
        ) from None


def occurrences(calendar: icalendar.Calendar, start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple]:
    """Busy [starts_at, ends_at) in UTC: opaque, not cancelled. Floating times and all-day events
    are read in the calendar's X-WR-TIMEZONE, else `zone`.

    Every occurrence produced counts against MAX_OCCURRENCES, free, cancelled and zero-length ones
    too (they cost as much to expand), and the iteration stops at the bound. recurring-ical-events'
    between() is eager and its lazy after() re-walks each rule per step (quadratic), so the window
    is walked a month at a time; the deadline (`_deadline`) also stops one long step inside a rule."""
    with suppress(ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(str(calendar.get("x-wr-timezone", zone.key)))
    deadline = monotonic_clock.monotonic() + EXPANSION_SECONDS
    seen, found = set(), set()
    try:
        query = recurring_ical_events.of(calendar)
        window = start
        while window < end:
            for event in query.between(window, min(window + WINDOW, end)):
                interval = _interval(event, zone)
                seen.add((str(event.get("uid", "")), interval))  # a long event shows in two windows
                if len(seen) > MAX_OCCURRENCES:
                    raise BadCalendar(
                        f"The calendar has more than {MAX_OCCURRENCES} occurrences (free, "
                        f"cancelled and zero-length ones included) within {HORIZON.days} days."
                    )
                if monotonic_clock.monotonic() > deadline:
                    raise _Overrun
                if _busy(event) and interval[0] < interval[1]:
                    found.add((max(interval[0], start), min(interval[1], end)))
            window += WINDOW
    except (BadCalendar, _Overrun):
        raise
    except RecursionError:
        raise BadCalendar("The calendar's components are nested too deeply.") from None
    except KeyError as missing:
        raise BadCalendar(f"An event has no {missing.args[0]}.") from None
    except Exception as error:  # noqa: BLE001 - a bad rule, date or zone: dateutil and icalendar raise anything
        raise BadCalendar(f"The calendar cannot be expanded: {type(error).__name__}: {error}"[:300]) from None
    return sorted(interval for interval in found if interval[0] < interval[1])


def _busy(event: icalendar.Event) -> bool:
    return (
        str(event.get("transp", "OPAQUE")).upper() != "TRANSPARENT"
        and str(event.get("status", "")).upper() != "CANCELLED"
    )


def _interval(event: icalendar.Event, zone: ZoneInfo) -> tuple[datetime, datetime]:
    interval = (_instant(event.decoded("dtstart"), zone), _instant(_end(event), zone))
    for instant in interval:
        if not FIRST_YEAR <= instant.year <= LAST_YEAR:
            raise BadCalendar(f"An event at {instant:%Y-%m-%d} is outside the years {FIRST_YEAR}-{LAST_YEAR}.")
    return interval


class _Overrun(BaseException):
    """Raised into the expanding thread at its deadline. A BaseException, so that no `except Exception`
    inside a library swallows it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block in this thread after `seconds`, wherever it is in pure-Python code.

    Checking the clock between occurrences is not enough: one step of a rule can search for
    years without yielding (FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30 takes 13 s to give its first)."""
    target, lock, running = threading.get_ident(), threading.Lock(), [True]

    def interrupt() -> None:
        with lock:
            if running[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(_Overrun))

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            running[0] = False
            timer.cancel()
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)  # one not yet raised


def _end(event: icalendar.Event) -> date | datetime:
    if "dtend" in event:
        return event.decoded("dtend")
    start = event.decoded("dtstart")
    if "duration" in event:
        return start + event.decoded("duration")
    return start + timedelta(days=1) if not isinstance(start, datetime) else start


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):  # a date: the whole day, on the calendar's clock
        value = datetime.combine(value, time(0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def store(db: Session, calendar_row: ExternalCalendar, result: Expansion) -> int:
    """Replace the calendar's busy rows by an expansion worked out beforehand."""
    db.execute(sa.delete(ExternalBusy).where(ExternalBusy.calendar_id == calendar_row.id))
    db.add_all(
        ExternalBusy(calendar_id=calendar_row.id, practitioner_id=calendar_row.practitioner_id, starts_at=s, ends_at=e)
        for s, e in result.busy
    )
    calendar_row.expanded_until = result.until
    return len(result.busy)


def fetch(url: str, *, allow_private: bool) -> str:
    """The document at `url`, within FETCH_DEADLINE and MAX_BYTES; raises InvalidInput (kept as the
    calendar's error) on any failure. It connects to the address it checked (booking/integrations/net.py)."""
    try:
        response = net.request(
            "GET",
            url,
            allow_private=allow_private,
            deadline=FETCH_DEADLINE,
            max_bytes=MAX_BYTES,
            headers={"user-agent": "Needlebook-Calendar/1", "accept": "text/calendar"},
        )
    except net.RequestFailed as failure:
        raise InvalidInput({"url": [f"Could not fetch the calendar: {failure}"[:300]]}) from None
    if response.status != 200:
        raise InvalidInput({"url": [f"Fetching the calendar gave HTTP {response.status}."]})
    return response.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Source:
    """A new calendar's content, fetched and expanded before any transaction (`prepare`)."""

    url: str | None
    content: str | None
    result: Expansion | None
    error: str | None  # why the URL could not be fetched: kept on the calendar, the scheduler retries


def prepare(*, url: str | None, ics: str | None, zone: ZoneInfo, now: datetime, allow_private: bool) -> Source:
    """Everything a new calendar waits on, and no database: a file must parse and expand within the
    bounds, else InvalidInput on `ics`. A URL is fetched now; if it cannot be (refused, timed out,
    HTTP error), that is recorded on the calendar and the scheduler retries, as a feed can be down
    for a while. If it serves something unusable (not iCalendar, or over a bound), InvalidInput on
    `url`: that is the feed's content, a retry would not fix it, and its owner should know now."""
    if (url is None) == (ics is None):
        raise InvalidInput({"url": ["Give either url or ics."], "ics": ["Give either url or ics."]})
    if ics is not None:
        return Source(None, ics, _usable("ics", ics, now, zone), None)
    assert url is not None  # one of the two, checked above
    check_url(url, allow_private=allow_private)
    try:
        text = fetch(url, allow_private=allow_private)
    except InvalidInput as failure:
        return Source(url, None, None, _first(failure))
    return Source(url, text, _usable("url", text, now, zone), None)


def _usable(field: str, text: str, now: datetime, zone: ZoneInfo) -> Expansion:
    try:
        return expansion(text, now, zone)
    except BadCalendar as bad:
        prefix = "The calendar at this URL is unusable: " if field == "url" else ""
        raise InvalidInput({field: [f"{prefix}{bad}"]}) from None


def _first(failure: InvalidInput) -> str:
    return next(iter(failure.errors.values()))[0][:500]


def add(
    db: Session, org: str, practitioner: Practitioner, name: str, source: Source, now: datetime
) -> ExternalCalendar:
    """Store a calendar prepared beforehand (`prepare`): a short write, no I/O."""
    row = ExternalCalendar(organization_id=org, practitioner_id=practitioner.id, name=name, source_url=source.url)
    db.add(row)
    db.flush()
    if source.error is not None:
        row.last_error, row.last_error_at = source.error, now
    else:
        assert source.result is not None  # prepare() expands what it fetched, or records why not
        row.content, row.fetched_at = source.content, now
        store(db, row, source.result)
    db.flush()
    return row


def new_version(row: ExternalCalendar, ics: str, zone: ZoneInfo, now: datetime) -> Expansion:
    """A file's new version, expanded (before any transaction); InvalidInput on `ics` if unusable."""
    if row.source_url is not None:
        raise InvalidInput({"ics": ["This calendar is read from its URL."]})
    return _usable("ics", ics, now, zone)


def replace_file(db: Session, row: ExternalCalendar, ics: str, result: Expansion, now: datetime) -> None:
    if row.source_url is not None:
        raise InvalidInput({"ics": ["This calendar is read from its URL."]})
    row.content, row.fetched_at, row.last_error, row.last_error_at = ics, now, None, None
    store(db, row, result)


def download(url: str, *, allow_private: bool) -> tuple[str | None, str | None]:
    """(the document, None) if it fetched and parsed, else (None, why): no database involved,
    so the scheduler holds no transaction open while a remote server answers."""
    try:
        text = fetch(url, allow_private=allow_private)
        parse(text)
    except InvalidInput as failure:
        return None, _first(failure)
    return text, None


@dataclass(frozen=True)
class Refresh:
    """What a refresh stores, worked out with no transaction open (`work_out`)."""

    text: str | None  # a new good copy, or None
    error: str | None  # why the fetch, parse or expansion failed, or None
    result: Expansion | None  # busy rows to store, or None to keep the ones there


def work_out(
    text: str | None,
    error: str | None,
    last_good: str | None,
    expanded_until: datetime | None,
    now: datetime,
    zone: ZoneInfo,
) -> Refresh:
    """Expand a download (or a file calendar's content); on any failure keep the last good copy,
    expanded again only if its rolling horizon needs it."""
    if text is not None:
        try:
            return Refresh(text, None, expansion(text, now, zone))
        except BadCalendar as bad:
            text, error = None, str(bad)
    if last_good is None or (error is not None and not needs_rolling(expanded_until, now)):
        return Refresh(None, error, None)
    try:
        return Refresh(None, error, expansion(last_good, now, zone))
    except BadCalendar as bad:
        return Refresh(None, error or str(bad), None)


def needs_rolling(expanded_until: datetime | None, now: datetime) -> bool:
    return expanded_until is None or expanded_until <= now + HORIZON - timedelta(days=30)


def apply(db: Session, row: ExternalCalendar, outcome: Refresh, now: datetime) -> bool:
    """Store a refresh's outcome (a short write); on failure keep the last good copy and record why."""
    if outcome.error is not None:
        row.last_error, row.last_error_at = outcome.error, now
    elif outcome.text is not None:
        row.content, row.fetched_at, row.last_error, row.last_error_at = outcome.text, now, None, None
    if outcome.result is not None:
        store(db, row, outcome.result)
    return outcome.error is None


def change(
    db: Session,
    org: str,
    calendar_id: str,
    expected_version: int | None,
    *,
    name: str | None = None,
    upload: tuple[str, Expansion] | None = None,
) -> ExternalCalendar:
    """Rename it, or store a file already expanded (`upload`: the text and its expansion)."""
    row = load_for_change(db, org, ExternalCalendar, calendar_id, expected_version, what="external calendar")
    if name is not None:
        row.name = name
    if upload is not None:
        replace_file(db, row, *upload, clock.now())
    db.flush()
    return row


def remove_by_id(db: Session, org: str, calendar_id: str, expected_version: int | None) -> None:
    remove(
        db,
        load_for_change(db, org, ExternalCalendar, calendar_id, expected_version, what="external calendar"),
        clock.now(),
    )
    db.flush()


def remove(db: Session, row: ExternalCalendar, now: datetime) -> None:
    row.archived_at = now
    db.execute(sa.delete(ExternalBusy).where(ExternalBusy.calendar_id == row.id))


def due_for_refresh(db: Session, now: datetime, every: timedelta) -> list[str]:
    """URL calendars not fetched for `every`, and file calendars whose expansion needs rolling on."""
    return list(
        db.scalars(
            sa.select(ExternalCalendar.id)
            .where(
                ExternalCalendar.archived_at.is_(None),
                sa.or_(
                    sa.and_(
                        ExternalCalendar.source_url.is_not(None),
                        sa.or_(ExternalCalendar.fetched_at.is_(None), ExternalCalendar.fetched_at <= now - every),
                        sa.or_(ExternalCalendar.last_error_at.is_(None), ExternalCalendar.last_error_at <= now - every),
                    ),
                    sa.and_(
                        ExternalCalendar.expanded_until <= now + HORIZON - timedelta(days=30),
                        sa.or_(ExternalCalendar.last_error_at.is_(None), ExternalCalendar.last_error_at <= now - every),
                    ),
                ),
            )
            .order_by(ExternalCalendar.id)
            .limit(100)
        )
    )
