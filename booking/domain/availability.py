"""The availability engine: a pure function over plain data (hours, busy intervals).

It tries each start on a grid in the clinic's local time and offers it when a
practitioner and a room are free for exactly what a booking would claim (the
numbing gap included), the pools have a unit, and the patient's rules allow it.
It calls the same functions the booking engine uses, so a slot it offers is one
the booking engine accepts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from booking.domain.claims import claim_key, free_unit, parse_claim_key, unit_prefix
from booking.domain.errors import DomainError
from booking.domain.intervals import Interval, merge
from booking.domain.timing import Need, Timing, instants, occupancy
from booking.domain.weekly import local_instant


@dataclass(frozen=True)
class PractitionerHours:
    practitioner_id: str
    open: list[Interval]  # when they can see patients at this clinic (hours less closures and time off)


@dataclass
class Search:
    clinic_id: str
    zone: str
    treatment_type_id: str
    timing: Timing
    start: datetime  # already clipped to the minimum notice and the horizon
    end: datetime
    practitioners: list[PractitionerHours]  # qualified, in order of preference
    rooms: list[str]  # with the required capability, in order of preference
    busy: dict[str, list[Interval]]  # resource key (units as 'numbing:cln#2') -> live claims
    numbing_seats: int = 0
    devices: int | None = None
    patient_id: str | None = None
    patient_allows: Callable[[datetime], None] | None = None  # raises DomainError when the start is refused
    step_minutes: int = 15
    order: str = "earliest"
    limit: int = 50


@dataclass(frozen=True)
class Slot:
    clinic_id: str
    practitioner_id: str
    room_id: str
    treatment_type_id: str
    starts_at: datetime
    procedure_starts_at: datetime
    ends_at: datetime


@dataclass
class Result:
    slots: list[Slot]
    # Why the patient's rules ruled out every start that was otherwise free.
    refusal: DomainError | None = None


class _Busy:
    """Sorted, merged intervals of one resource; `overlaps` is two bisections."""

    def __init__(self, intervals: Iterable[Interval]) -> None:
        merged = merge(intervals)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect_right(self.ends, start)
        return i < len(self.starts) and self.starts[i] < end


def grid(search: Search) -> Iterator[datetime]:
    """UTC starts at every `step_minutes` of the clinic's local clock within the window."""
    zone = ZoneInfo(search.zone)
    day = search.start.astimezone(zone).date()
    last = search.end.astimezone(zone).date()
    seen = set()
    while day <= last:
        for minute in range(0, 24 * 60, search.step_minutes):
            start = local_instant(day, minute, zone)
            # A wall-clock time skipped or repeated by a DST change yields one instant once.
            if search.start <= start < search.end and start not in seen:
                seen.add(start)
                yield start
        day += timedelta(days=1)


def find_slots(search: Search) -> Result:
    plan = _ClaimOffsets.of(search)
    claims = search.busy
    starts = sorted(open_starts(search, plan.length))
    # Which practitioner and which room (the first in preference order) can take each start,
    # decided one resource at a time over all the starts rather than start by start.
    practitioners = _first_free(
        starts,
        [
            (
                p.practitioner_id,
                _allowed(
                    _latest_starts(p.open, plan.length),
                    claims.get(claim_key("practitioner", p.practitioner_id), ()),
                    plan.practitioner,
                ),
            )
            for p in search.practitioners
        ],
    )
    everywhere = [(search.start, search.end)]
    rooms = _first_free(
        starts,
        [(room, _allowed(everywhere, claims.get(claim_key("room", room), ()), (plan.room,))) for room in search.rooms],
    )
    patient = _allowed(
        everywhere,
        claims.get(claim_key("patient", search.patient_id), ()) if search.patient_id else (),
        (plan.patient,),
    )
    pools = [(offsets, capacity, resource, _units(claims, resource)) for resource, offsets, capacity in plan.pools]
    result = Result([])
    for start in sorted(starts, key=_order_key(search)):
        practitioner_id, room_id = practitioners.get(start), rooms.get(start)
        if (
            practitioner_id is None
            or room_id is None
            or not _holds(patient, start)
            or not all(
                _pool_has_unit(start + begin, start + end, pool, capacity, units)
                for (begin, end), capacity, pool, units in pools
            )
        ):
            continue
        if search.patient_allows is not None:
            try:
                search.patient_allows(start)
            except DomainError as refusal:
                result.refusal = result.refusal or refusal
                continue
        result.slots.append(
            Slot(
                search.clinic_id,
                practitioner_id,
                room_id,
                search.treatment_type_id,
                start,
                start + plan.numbing,
                start + plan.length,
            )
        )
        if len(result.slots) >= search.limit:
            break
    if result.slots:
        result.refusal = None
    return result


@dataclass(frozen=True)
class _ClaimOffsets:
    """What a booking claims, as offsets from its start: the same for every start of one search.

    Taken from one occupancy() call, so the engine checks exactly what the booking
    engine will claim; every span in occupancy() is the start plus fixed durations.
    """

    numbing: timedelta  # start to procedure start
    length: timedelta  # start to the patient leaving: the practitioner's open time must cover it
    patient: tuple[timedelta, timedelta]
    practitioner: tuple[tuple[timedelta, timedelta], ...]
    room: tuple[timedelta, timedelta]
    pools: tuple[tuple[str, tuple[timedelta, timedelta], int], ...]  # (resource, offsets, capacity)

    @classmethod
    def of(cls, search: Search) -> _ClaimOffsets:
        origin = search.start
        at = instants(search.timing, origin)
        needs = occupancy(
            search.timing,
            at,
            clinic_id=search.clinic_id,
            practitioner_id="?",
            room_id="?",
            patient_id=search.patient_id or "?",
            numbing_seats=search.numbing_seats,
            devices=search.devices,
        )

        def offsets(need: Need) -> _Offsets:
            return need.starts_at - origin, need.ends_at - origin

        def kind(need: Need) -> str:
            return parse_claim_key(need.resource).kind

        return cls(
            numbing=at.procedure_starts_at - origin,
            length=at.ends_at - origin,
            patient=next(offsets(n) for n in needs if kind(n) == "patient"),
            practitioner=tuple(offsets(n) for n in needs if kind(n) == "practitioner"),
            room=next(offsets(n) for n in needs if kind(n) == "room"),
            pools=tuple((n.resource, offsets(n), n.capacity) for n in needs if n.capacity is not None),
        )


def open_starts(search: Search, length: timedelta) -> set[datetime]:
    """The grid starts (see grid()) at which someone's open time covers [start, start + length).

    Walks only the merged open time, not the whole 24-hour grid. On a day whose UTC
    offset does not change, the local grid is midnight plus multiples of the step, so
    the starts inside an open interval are found by arithmetic; on a day with a DST
    change the day's grid is made as grid() makes it, minute by minute with zoneinfo.
    """
    last = search.end - _TICK  # starts are before the end of the window
    spans = [
        (max(s, search.start), min(e - max(length, _TICK), last))
        for s, e in merge(interval for p in search.practitioners for interval in p.open)
    ]
    spans = [(s, e) for s, e in spans if s <= e]  # a start in [s, e] fits (both ends included)
    if not spans:
        return set()
    zone, step = ZoneInfo(search.zone), timedelta(minutes=search.step_minutes)
    per_day = (24 * 60 - 1) // search.step_minutes  # the last grid index of a day
    ends = [e for _, e in spans]
    found: set[datetime] = set()
    day = search.start.astimezone(zone).date()
    midnight = local_instant(day, 0, zone)
    while day <= search.end.astimezone(zone).date():
        following = local_instant(day + timedelta(days=1), 0, zone)
        if (
            following - midnight == _DAY
            and midnight.astimezone(zone).utcoffset() == (following - _TICK).astimezone(zone).utcoffset()
        ):
            # Steady clock: grid index k of this day is midnight + k * step. (Two changes that cancel
            # out within one day would pass this test; tzdata has none from 2026 to 2028 at least.)
            for s, e in spans[bisect_left(ends, midnight) :]:
                if s > midnight + per_day * step:
                    break
                first, last_k = max(0, -((midnight - s) // step)), min(per_day, (e - midnight) // step)
                found.update(midnight + k * step for k in range(first, last_k + 1))
        else:
            for minute in range(0, 24 * 60, search.step_minutes):
                start = local_instant(day, minute, zone)
                i = bisect_left(ends, start)
                if i < len(spans) and spans[i][0] <= start:
                    found.add(start)
        day, midnight = day + timedelta(days=1), following
    return found


_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)


def _order_key(search: Search) -> Callable[[datetime], datetime | tuple[int, datetime]]:
    if search.order != "evening":
        return lambda start: start
    zone = ZoneInfo(search.zone)
    return lambda start: evening_first(start, zone)


def evening_first(start: datetime, zone: ZoneInfo) -> tuple[int, datetime]:
    """The order of `order=evening`, rule 9: latest in the clinic's day first (a session can
    leave the skin pink), then by date."""
    local = start.astimezone(zone)
    return -(local.hour * 60 + local.minute), start


# Sets of starts are closed intervals [first, last] in two sorted lists: (firsts, lasts).
_Allowed = tuple[list[datetime], list[datetime]]
_Offsets = tuple[timedelta, timedelta]  # from a booking's start to the start and end of one need
_Units = list[tuple[str, _Busy]]  # a pool's units that have claims, by key


def _latest_starts(open_: list[Interval], length: timedelta) -> list[Interval]:
    """The starts whose booking of `length` lies inside one (merged) open interval."""
    return [(s, e - max(length, _TICK)) for s, e in merge(open_) if s <= e - max(length, _TICK)]


def _allowed(spans: list[Interval], taken: Iterable[Interval], offsets: Iterable[_Offsets]) -> _Allowed:
    """The starts in `spans` (closed, sorted) none of whose needs [start + a, start + b) meets a `taken` interval."""
    # A need meets a taken [s, e) when s - b < start < e - a: an open interval of starts, so
    # what is left of the closed spans is closed again.
    blocked = sorted((s - b, e - a) for s, e in taken if s < e for a, b in offsets)
    merged: list[list[datetime]] = []
    for low, high in blocked:
        if merged and low < merged[-1][1]:  # open intervals that only touch leave that instant free
            merged[-1][1] = max(merged[-1][1], high)
        elif low < high:
            merged.append([low, high])
    firsts: list[datetime] = []
    lasts: list[datetime] = []
    j = 0
    for first, last in spans:
        while j < len(merged) and merged[j][1] <= first:
            j += 1
        cursor, k = first, j
        while k < len(merged) and merged[k][0] < last:
            if merged[k][0] >= cursor:
                firsts.append(cursor)
                lasts.append(merged[k][0])
            cursor = max(cursor, merged[k][1])
            k += 1
        if cursor <= last:
            firsts.append(cursor)
            lasts.append(last)
    return firsts, lasts


def _holds(allowed: _Allowed, start: datetime) -> bool:
    firsts, lasts = allowed
    i = bisect_left(lasts, start)
    return i < len(firsts) and firsts[i] <= start


def _first_free(starts: list[datetime], resources: Sequence[tuple[str, _Allowed]]) -> dict[datetime, str]:
    """For each of the (sorted) starts, the first of `resources` [(key, allowed)] whose allowed starts hold it."""
    chosen: dict[datetime, str] = {}
    for key, (firsts, lasts) in reversed(resources):  # the first in preference order is written last: it wins
        for first, last in zip(firsts, lasts, strict=True):
            chosen.update(dict.fromkeys(starts[bisect_left(starts, first) : bisect_right(starts, last)], key))
    return chosen


def _units(claims: dict[str, list[Interval]], pool: str) -> _Units:
    """A pool's units that have claims, by key."""
    prefix = unit_prefix(pool)
    return [(key, _Busy(intervals)) for key, intervals in claims.items() if key.startswith(prefix)]


def _pool_has_unit(start: datetime, end: datetime, pool: str, capacity: int, units: _Units) -> bool:
    """As the booking engine decides (claims.free_unit), over [start, end)."""
    return free_unit(pool, capacity, {key for key, b in units if b.overlaps(start, end)}) is not None
