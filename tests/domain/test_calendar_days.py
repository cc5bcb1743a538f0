"""Calendar days between sessions (booking.domain.calendar_days): rules 5 and 6 count local dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.calendar_days import Dated, days_apart, first_instant, first_instant_after
from booking.domain.errors import CourseComplete, IntervalTooShort
from booking.domain.rules import check_course_cap, check_interval, earliest_start

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "America/Santiago", "America/Havana", "Pacific/Apia"]


def local(text: str, zone: str) -> Dated:
    """A session at a local wall-clock time of a clinic in `zone`."""
    return Dated(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC), zone)


@pytest.mark.parametrize(
    "zone, day, first",
    [
        ("Europe/London", "2027-03-28", "2027-03-28T00:00:00+00:00"),  # the change is at 01:00
        ("Europe/London", "2027-03-30", "2027-03-30T00:00:00+01:00"),
        ("Australia/Sydney", "2027-04-04", "2027-04-04T00:00:00+11:00"),
        # Midnight does not exist: the clocks jump from 00:00 to 01:00, the date's first instant.
        ("America/Santiago", "2027-09-05", "2027-09-05T01:00:00-03:00"),
        ("America/Havana", "2027-03-14", "2027-03-14T01:00:00-04:00"),
        # Midnight comes twice (Havana goes back from 01:00 to 00:00): the first.
        ("America/Havana", "2027-11-07", "2027-11-07T00:00:00-04:00"),
        # Santiago goes back from 24:00 to 23:00 the day before: Sunday starts at its only midnight.
        ("America/Santiago", "2027-04-04", "2027-04-04T00:00:00-04:00"),
        # Monrovia's 1972 jump landed at 00:44:30: the date began then.
        ("Africa/Monrovia", "1972-01-07", "1972-01-07T00:44:30+00:00"),
        # Samoa skipped 30 December 2011 entirely: the next date's first instant.
        ("Pacific/Apia", "2011-12-30", "2011-12-31T00:00:00+14:00"),
    ],
)
def test_the_first_instant_of_a_local_date(zone, day, first):
    found = first_instant(date.fromisoformat(day), zone)
    assert found == datetime.fromisoformat(first)
    assert found.tzinfo == UTC


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.dates(date(2010, 1, 1), date(2030, 12, 31)))
def test_the_first_instant_is_on_the_date_and_the_second_before_it_is_not(zone, day):
    tz = ZoneInfo(zone)
    first = first_instant(day, zone)
    if first.astimezone(tz).date() != day:  # a skipped date: the next one begins where it would have
        assert first.astimezone(tz).date() == day + timedelta(days=1)
    assert (first - timedelta(seconds=1)).astimezone(tz).date() < first.astimezone(tz).date()


def test_each_session_is_dated_in_its_own_clinics_zone():
    sydney = local("2027-03-02T09:00", "Australia/Sydney")  # Monday 1 March 22:00 UTC
    london = local("2027-03-29T16:00", "Europe/London")  # Tuesday 30 March 02:00 in Sydney
    assert days_apart(sydney, london) == 27
    assert days_apart(london, sydney) == 27
    # A session recorded without a clinic is dated in the zone of the one it is compared with.
    assert days_apart(Dated(sydney.at), london) == 28  # 1 March in London
    assert days_apart(london, Dated(sydney.at)) == 28


CHANGES = [
    # zone, the session (local), the 28th date after it, that date's offset: across each DST change
    ("Europe/London", "2027-03-02T10:00", "2027-03-30", "+01:00"),
    ("Europe/London", "2027-10-05T10:00", "2027-11-02", "+00:00"),
    ("America/New_York", "2027-03-02T10:00", "2027-03-30", "-04:00"),
    ("America/New_York", "2027-10-19T10:00", "2027-11-16", "-05:00"),
    ("Australia/Sydney", "2027-03-16T10:00", "2027-04-13", "+10:00"),
    ("Australia/Sydney", "2027-09-14T10:00", "2027-10-12", "+11:00"),
]


@pytest.mark.parametrize("zone, session, day, offset", CHANGES)
def test_any_time_on_the_28th_local_date_is_allowed_whatever_dst_did(zone, session, day, offset):
    previous = [local(session, zone)]
    for hour in ("00:00", "09:00", "10:00", "23:59"):
        check_interval(previous, local(f"{day}T{hour}", zone), 28)
    eve = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    with pytest.raises(IntervalTooShort) as refused:
        check_interval(previous, local(f"{eve}T23:59", zone), 28)
    assert refused.value.facts["earliest_start"] == datetime.fromisoformat(f"{day}T00:00:00{offset}")
    assert first_instant_after(previous[0], 28, zone) == datetime.fromisoformat(f"{day}T00:00:00{offset}")


def test_earliest_start_is_in_the_later_clinics_zone():
    sydney = local("2027-03-02T09:00", "Australia/Sydney")
    start = local("2027-03-10T10:00", "Europe/London")
    assert earliest_start([sydney], start, 28) == datetime.fromisoformat("2027-03-30T00:00:00+01:00")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(ZONES[:3]), st.integers(0, 400 * 24)), max_size=5),
    st.sampled_from(ZONES[:3]),
    st.integers(0, 400 * 24),
    st.integers(1, 60),
)
def test_earliest_start_is_the_first_allowed_instant(previous, zone, start_hour, min_days):
    """Allowed exactly from earliest_start on (checked hour by hour before it), in calendar days."""
    base = datetime(2027, 1, 1, tzinfo=UTC)
    sessions = [Dated(base + timedelta(hours=h), z) for z, h in previous]
    start = Dated(base + timedelta(hours=start_hour), zone)
    earliest = earliest_start(sessions, start, min_days)
    assert earliest >= start.at
    check_interval(sessions, Dated(earliest, zone), min_days)
    assert all(days_apart(s, Dated(earliest, zone)) >= min_days for s in sessions)
    probe = start.at
    while probe < earliest:
        with pytest.raises(IntervalTooShort):
            check_interval(sessions, Dated(probe, zone), min_days)
        probe += timedelta(hours=5)
    if earliest > start.at:  # it is a date's first instant in the clinic's zone
        assert earliest == first_instant(earliest.astimezone(ZoneInfo(zone)).date(), zone)


def test_at_most_two_sessions_in_any_365_calendar_days():
    first = local("2027-03-27T16:00", "Europe/London")  # GMT
    second = local("2027-09-01T10:00", "Europe/London")
    call = dict(sessions=[first, second], max_sessions=6, per_365_days=2)
    with pytest.raises(CourseComplete):
        check_course_cap(start=local("2028-03-25T23:00", "Europe/London"), **call)  # the 364th date
    # The 365th date (the clocks went forward at 01:00), earlier on the clock: 364 days 16 hours.
    check_course_cap(start=local("2028-03-26T09:00", "Europe/London"), **call)
