"""Open time as UTC intervals: weekly hours expanded day by day, less closures and time off."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.weekly import Shift, expand, local_instant

Interval = tuple[datetime, datetime]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with touching and overlapping intervals joined."""
    merged: list[list[datetime]] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def subtract(intervals: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """`intervals` less every hole; both are lists of (start, end)."""
    result = []
    holes = merge(holes)
    for start, end in merge(intervals):
        cursor = start
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
            if cursor >= end:
                break
        if cursor < end:
            result.append((cursor, end))
    return result


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    result, i, j = [], 0, 0
    a, b = merge(a), merge(b)
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            result.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return result


def covers(intervals: list[Interval], start: datetime, end: datetime) -> bool:
    return any(s <= start and end <= e for s, e in merge(intervals))


def local_dates(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """[first, last) local dates that can hold any part of [start, end), with a day's margin."""
    return (start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date() + timedelta(days=2))


def weekly(shifts: list[Shift], start: datetime, end: datetime) -> list[Interval]:
    """The shifts as UTC intervals over every local date touching [start, end)."""
    intervals = []
    for shift in shifts:
        first, last = local_dates(start, end, ZoneInfo(shift.zone))
        intervals += [(s, e) for _, s, e in expand(shift, first, last)]
    return merge(intervals)


def closed_days(closures: Iterable[tuple[date, date]], zone_name: str) -> list[Interval]:
    """Closure date ranges (inclusive local days) as UTC intervals from midnight to midnight."""
    zone = ZoneInfo(zone_name)
    return merge(
        (local_instant(first, 0, zone), local_instant(last + timedelta(days=1), 0, zone)) for first, last in closures
    )


def open_time(
    *,
    opening: list[Shift],
    working: list[Shift],
    closures: Iterable[tuple[date, date]],
    time_off: Iterable[Interval],
    zone: str,
    start: datetime,
    end: datetime,
) -> list[Interval]:
    """When a practitioner can see patients at a clinic within [start, end).

    Inside both the clinic's opening hours and the practitioner's shifts at that
    clinic, outside closure days and time off.
    """
    clinic = clinic_open(opening=opening, closures=closures, zone=zone, start=start, end=end)
    return staff_open(clinic, working=working, time_off=time_off, start=start, end=end)


def clinic_open(
    *, opening: list[Shift], closures: Iterable[tuple[date, date]], zone: str, start: datetime, end: datetime
) -> list[Interval]:
    """When a clinic is open within [start, end): its weekly hours less closure days.

    The part of open_time() that is the same for every practitioner of the clinic.
    """
    return subtract(intersect(weekly(opening, start, end), [(start, end)]), closed_days(closures, zone))


def staff_open(
    clinic: list[Interval], *, working: list[Shift], time_off: Iterable[Interval], start: datetime, end: datetime
) -> list[Interval]:
    """A practitioner's open time within [start, end), given the clinic's (clinic_open())."""
    return subtract(intersect(clinic, weekly(working, start, end)), time_off)
