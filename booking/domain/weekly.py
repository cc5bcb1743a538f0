"""Weekly wall-clock hours: parsing, validation and expansion to real instants.

Weekly hours are local wall-clock times in a clinic's IANA zone. They are
expanded day by day with zoneinfo, so a 09:00-17:00 shift stays 09:00-17:00 local
on both sides of a DST change while its UTC instants move.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from booking.domain import clock
from booking.domain.errors import InvalidInput

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HHMM = re.compile(r"\A([01][0-9]|2[0-3]):([0-5][0-9])\Z")  # ASCII digits only; no trailing newline


def parse_hhmm(text: str, *, allow_end_of_day: bool = False) -> int:
    """'09:30' -> 570 minutes after midnight; '24:00' only as an end of day."""
    if allow_end_of_day and text == "24:00":
        return 24 * 60
    match = _HHMM.match(text)
    if not match:
        raise ValueError("Must be a local time as HH:MM (00:00 to 23:59).")
    return int(match.group(1)) * 60 + int(match.group(2))


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_timezone(name: object) -> ZoneInfo:
    """An IANA zone name such as Europe/London; abbreviations and offsets are refused."""
    if not isinstance(name, str) or ("/" not in name and name != "UTC"):
        raise ValueError("Must be an IANA time zone name such as Europe/London.")
    if name not in _zone_names():
        raise ValueError(f"Unknown IANA time zone '{name}'.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - defensive
        raise ValueError(f"Unknown IANA time zone '{name}'.") from exc


_ZONES: frozenset[str] | None = None


def practitioner_zone(clinic_zones: Iterable[str]) -> ZoneInfo:
    """The zone of a practitioner's own times (time off shown, an external calendar's floating
    times read): the one zone of their clinics, else UTC.

    A practitioner whose clinics share a zone lives on its clock. One whose clinics are in two
    zones has no single local clock, and picking one (say the first clinic's) would change with
    an unrelated edit of their clinics; UTC says so plainly, and it is what integrators have
    always been shown for such a practitioner's time off. The external calendar reads floating
    times in this same zone, so what blocks a practitioner matches what they are shown.
    """
    zones = set(clinic_zones)
    return ZoneInfo(zones.pop() if len(zones) == 1 else "UTC")


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


@dataclass(frozen=True)
class Shift:
    """One weekly interval; `place` names where (a clinic id) for error messages."""

    weekday: int
    start: int
    end: int
    place: str = ""
    zone: str = "UTC"

    def describe(self) -> str:
        return f"{WEEKDAYS[self.weekday]} {format_hhmm(self.start)}-{format_hhmm(self.end)}"


def check_week(shifts: list[Shift]) -> list[Shift]:
    """Each shift well-formed and no two overlapping in real time.

    Shifts in one zone are compared by weekday and wall clock. Shifts in
    different zones are compared as instants over the coming year, which
    covers both DST changes of each zone: London 14:00-18:00 and New York
    09:00-12:00 on the same Monday are the same hours.
    """
    errors: dict[str, dict[str, list[str]]] = {}
    for index, shift in enumerate(shifts):
        if not 0 <= shift.weekday <= 6:
            errors[str(index)] = {"weekday": ["Must be 0 (Monday) to 6 (Sunday)."]}
        elif shift.start >= shift.end:
            errors[str(index)] = {"end": ["Must be after start."]}
    if errors:
        raise InvalidInput(errors)
    for first, second, when in overlapping_shifts(shifts):
        errors.setdefault(str(second), {}).setdefault("start", []).append(
            f"Overlaps entry {first} ({shifts[first].describe()} at {shifts[first].place or 'the same place'})"
            f" on {when.isoformat()}."
        )
    if errors:
        raise InvalidInput(errors)
    return shifts


def check_hours_at_own_clinics(hour_clinic_ids: list[str], clinic_ids: set[str]) -> None:
    """A practitioner's weekly hours are only at clinics they work at (errors keyed by entry)."""
    unknown = {
        str(i): {"clinic_id": ["The practitioner does not work at this clinic."]}
        for i, clinic_id in enumerate(hour_clinic_ids)
        if clinic_id not in clinic_ids
    }
    if unknown:
        raise InvalidInput(unknown)


def check_no_stranded_hours(hour_clinic_ids: set[str], kept_clinic_ids: set[str]) -> None:
    """A practitioner cannot leave a clinic while they still have weekly hours there."""
    stranded = sorted(hour_clinic_ids - kept_clinic_ids)
    if stranded:
        raise InvalidInput(
            {"clinic_ids": [f"Still has working hours at {', '.join(stranded)}; replace the working hours first."]}
        )


def overlapping_shifts(shifts: list[Shift], *, today: date | None = None) -> Iterator[tuple[int, int, date]]:
    """Yield (i, j, local date of i) for each pair of shifts that overlap."""
    today = today or clock.now().date()
    zones = {s.zone for s in shifts}
    found: set[tuple[int, int]] = set()
    if len(zones) <= 1:
        for i, a in enumerate(shifts):
            for j in range(i + 1, len(shifts)):
                b = shifts[j]
                if a.weekday == b.weekday and a.start < b.end and b.start < a.end:
                    found.add((i, j))
                    yield i, j, _next_weekday(today, a.weekday)
        return
    spans = sorted(
        (start, end, index, day)
        for index, shift in enumerate(shifts)
        for day, start, end in expand(shift, today, today + timedelta(days=371))
    )
    open_spans: list[tuple[datetime, int, date]] = []
    for start, end, index, day in spans:
        open_spans = [s for s in open_spans if s[0] > start]
        for _, other, other_day in open_spans:
            pair = (min(index, other), max(index, other))
            if other != index and pair not in found:
                found.add(pair)
                yield pair[0], pair[1], other_day if pair[0] == other else day
        open_spans.append((end, index, day))


def expand(shift: Shift, first: date, last: date) -> Iterator[tuple[date, datetime, datetime]]:
    """(local date, start, end) as UTC instants for each date in [first, last) on the shift's weekday."""
    zone = ZoneInfo(shift.zone)
    day = _next_weekday(first, shift.weekday)
    while day < last:
        yield day, local_instant(day, shift.start, zone), local_instant(day, shift.end, zone)
        day += timedelta(days=7)


def local_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock minute; 24:00 is the next midnight.

    A wall-clock time skipped by a spring-forward change resolves with the
    offset before the change (fold=0), i.e. one hour later on the new clock.
    """
    extra, minute = divmod(minute, 24 * 60)
    local = datetime.combine(day + timedelta(days=extra), time(minute // 60, minute % 60), zone)
    return local.astimezone(UTC)


def _next_weekday(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)
