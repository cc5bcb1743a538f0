"""The availability engine: a pure function over plain data (hours, busy intervals).

It tries each start on a grid in the clinic's local time and offers it when a
practitioner and a room are free for exactly what a booking would claim (the
numbing gap included), the pools have a unit, and the patient's rules allow it.
It calls the same functions the booking engine uses, so a slot it offers is one
the booking engine accepts.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .calendar import Interval, merge
from .errors import DomainError
from .timing import Instants, Timing, instants, occupancy
from .weekly import local_instant


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
    patient_allows: object = None  # callable(start: datetime) -> None, raising DomainError when refused
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

    def __init__(self, intervals):
        merged = merge(intervals)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect_right(self.ends, start)
        return i < len(self.starts) and self.starts[i] < end


_FREE = _Busy([])


def grid(search: Search):
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
    busy = {key: _Busy(intervals) for key, intervals in search.busy.items()}
    opened = {p.practitioner_id: _Busy(p.open) for p in search.practitioners}
    # Everyone's open time merged: a start it does not cover (nights, closed days: most of
    # the grid) cannot fit anyone and is skipped with one bisection; _first_fit decides the rest.
    anyone = _Busy([interval for p in search.practitioners for interval in p.open])
    result = Result([])
    starts = sorted(grid(search), key=_order_key(search))
    for start in starts:
        at = instants(search.timing, start)
        if not _covers(anyone, at.starts_at, at.ends_at):
            continue
        slot = _first_fit(search, at, busy, opened)
        if slot is None:
            continue
        if search.patient_allows is not None:
            try:
                search.patient_allows(start)
            except DomainError as refusal:
                result.refusal = result.refusal or refusal
                continue
        result.slots.append(slot)
        if len(result.slots) >= search.limit:
            break
    if result.slots:
        result.refusal = None
    return result


def _order_key(search: Search):
    if search.order != "evening":
        return lambda start: start
    zone = ZoneInfo(search.zone)
    # Rule 9: latest in the day first (it can leave the skin pink), then by date.
    return lambda start: (-_minute_of_day(start.astimezone(zone)), start)


def _minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


def _first_fit(search: Search, at: Instants, busy, opened) -> Slot | None:
    """The first practitioner and room (in preference order) free for this start."""
    working = [p for p in search.practitioners if _covers(opened[p.practitioner_id], at.starts_at, at.ends_at)]
    if not working:
        return None
    probe = occupancy(search.timing, at, clinic_id=search.clinic_id, practitioner_id="?", room_id="?",
                      patient_id=search.patient_id or "?", numbing_seats=search.numbing_seats,
                      devices=search.devices)
    for need in probe:
        kind = need.resource.split(":")[0]
        if kind == "patient" and search.patient_id and busy.get(need.resource, _FREE).overlaps(
                need.starts_at, need.ends_at):
            return None
        if need.capacity is not None and not _pool_has_unit(need, busy):
            return None
    practitioner_needs = [n for n in probe if n.resource.startswith("practitioner:")]
    room_need = next(n for n in probe if n.resource.startswith("room:"))
    for practitioner in working:
        own = busy.get(f"practitioner:{practitioner.practitioner_id}", _FREE)
        if any(own.overlaps(n.starts_at, n.ends_at) for n in practitioner_needs):
            continue
        for room in search.rooms:
            if not busy.get(f"room:{room}", _FREE).overlaps(room_need.starts_at, room_need.ends_at):
                return Slot(search.clinic_id, practitioner.practitioner_id, room, search.treatment_type_id,
                            at.starts_at, at.procedure_starts_at, at.ends_at)
    return None


def _covers(opened: _Busy, start: datetime, end: datetime) -> bool:
    i = bisect_right(opened.ends, start) if opened.ends else 0
    # The open interval holding `start` must reach `end` (open intervals are merged).
    return i < len(opened.starts) and opened.starts[i] <= start and end <= opened.ends[i]


def _pool_has_unit(need, busy) -> bool:
    """As the booking engine decides: fewer units in use than the capacity, and a free one."""
    prefix = f"{need.resource}#"
    used = {key for key, b in busy.items() if key.startswith(prefix) and b.overlaps(need.starts_at, need.ends_at)}
    free = [n for n in range(1, need.capacity + 1) if f"{prefix}{n}" not in used]
    return bool(free) and len(used) < need.capacity
