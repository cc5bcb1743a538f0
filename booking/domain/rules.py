"""The clinical rules as plain functions over plain data (numbered as in docs/rules.md).

Each raises the typed error whose `code` the contract names, with the facts a
client needs to act (the conflicting ids, the earliest allowed start).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from booking.domain.calendar_days import Dated, date_of, days_apart, first_instant, first_instant_after
from booking.domain.claims import free_unit, parse_claim_key, unit_prefix
from booking.domain.errors import (
    AreaNotAllowed,
    ConsultationRequired,
    Contraindicated,
    CourseComplete,
    IntervalTooShort,
    NotQualified,
    SlotUnavailable,
)
from booking.domain.vocabulary import MICRONEEDLING

if TYPE_CHECKING:  # timing imports SESSION_KIND from here
    from booking.domain.timing import Need

# Rule 2: a session cannot be booked while one is active; consultations and reviews still can.
# The kind every session rule (interval, course cap, consultation, contraindications, devices) is about.
SESSION_KIND = MICRONEEDLING
YEAR = timedelta(days=365)  # rule 6's "any 365 days", between local dates


@dataclass(frozen=True)
class Busy:
    """A claim already held on a resource (a unit key such as 'numbing:cln_x#2' for pools)."""

    resource: str
    starts_at: datetime
    ends_at: datetime
    appointment_id: str | None = None
    hold_id: str | None = None


def check_area(area: str | None, allowed: list[str], kind: str) -> None:
    if area is not None and kind == SESSION_KIND and area not in allowed:
        raise AreaNotAllowed(
            f"'{area}' is not treated with this treatment type.", area=area, allowed_areas=list(allowed)
        )


def check_qualified(
    *,
    treatment_type_id: str,
    qualified_ids: Collection[str],
    practitioner_clinic_ids: Collection[str],
    clinic_id: str,
    room_clinic_id: str,
    room_capabilities: Collection[str],
    required_capability: str | None,
) -> None:
    if clinic_id not in practitioner_clinic_ids:
        raise NotQualified("The practitioner does not work at this clinic.", reason="practitioner_clinic")
    if treatment_type_id not in qualified_ids:
        raise NotQualified(
            "The practitioner is not qualified for this treatment type.", reason="practitioner_treatment_type"
        )
    if room_clinic_id != clinic_id:
        raise NotQualified("The room is not in this clinic.", reason="room_clinic")
    if required_capability and required_capability not in room_capabilities:
        raise NotQualified(
            f"The room lacks the '{required_capability}' capability.",
            reason="room_capability",
            required_capability=required_capability,
        )


@dataclass(frozen=True)
class Recorded:
    """A contraindication recorded on the patient and not resolved. `until`, on a temporary one, is
    the first local date on which it no longer applies: it blocks sessions on dates before it only."""

    code: str
    until: date | None = None

    def active_on(self, day: date) -> bool:
        """Whether it blocks a session on the local date `day`: permanent, or `day` before `until`."""
        return self.until is None or day < self.until


def check_contraindications(kind: str, recorded: Sequence[Recorded], session: Dated) -> None:
    """Rule 2: a session is refused while a contraindication is active on its local date (in its
    clinic's zone). When every active one is temporary, `earliest_start` is the first instant of the
    latest `until` there, the first session date none of them applies to."""
    if kind != SESSION_KIND:
        return
    assert session.zone is not None  # a session to book is always at a clinic
    day = date_of(session, session.zone)
    active = [r for r in recorded if r.active_on(day)]
    if not active:
        return
    codes = sorted({r.code for r in active})
    facts: dict[str, object] = {"contraindications": codes}
    detail = f"The patient has an active contraindication: {', '.join(codes)}."
    untils = [r.until for r in active if r.until is not None]
    if len(untils) == len(active):
        until = max(untils)
        facts["until"] = until.isoformat()
        facts["earliest_start"] = first_instant(until, session.zone)
        detail = f"The patient has a temporary contraindication until {until.isoformat()}: {', '.join(codes)}."
    raise Contraindicated(detail, **facts)


def earliest_start(previous: Sequence[Dated], start: Dated, min_days: int) -> datetime:
    """The first instant at or after `start` at least `min_days` calendar days from every
    previous session: the first instant of a local date in the start's clinic's zone."""
    assert start.zone is not None  # a session to book is always at a clinic
    candidate = start.at
    for _ in range(len(previous) + 1):
        here = Dated(candidate, start.zone)
        clash = [p for p in previous if days_apart(p, here) < min_days]
        if not clash:
            return candidate
        # Each step clears at least one clashing session for good: at most len(previous) steps.
        candidate = max(first_instant_after(p, min_days, start.zone) for p in clash)
    return candidate


def check_interval(previous: Sequence[Dated], start: Dated, min_days: int | None) -> None:
    """Rule 5: session starts of one patient at least `min_days` calendar days apart, in either
    direction, each dated in its own clinic's zone (booking.domain.calendar_days)."""
    if not min_days:
        return
    close = sorted(p.at for p in previous if days_apart(p, start) < min_days)
    if close:
        raise IntervalTooShort(
            f"Sessions of a patient must start at least {min_days} days apart.",
            earliest_start=earliest_start(previous, start, min_days),
            conflicting_starts=close,
        )


@dataclass(frozen=True)
class Booked:
    """A session still to come (a booked appointment or a live hold), with its own minimum interval."""

    starts_at: datetime
    min_interval_days: int | None
    appointment_id: str | None = None
    hold_id: str | None = None
    zone: str = "UTC"  # its clinic's


def check_recorded_session(performed_at: datetime, booked: list[Booked], sessions: list[Dated]) -> None:
    """Rule 5 seen from a session recorded after the fact: every booked session must stay at
    least its minimum from it. `sessions`: every session of the patient, the booked ones
    included. A refusal names each booked session too close and the earliest it could move to.
    The recorded session has no clinic: it is dated in each booked session's zone."""
    conflicts = []
    recorded = Dated(performed_at)
    for session in booked:
        this = Dated(session.starts_at, session.zone)
        try:
            check_interval([recorded], this, session.min_interval_days)
        except IntervalTooShort:
            others = list(sessions)
            others.pop(next(i for i, s in enumerate(others) if s.at == session.starts_at))
            try:
                check_interval([*others, recorded], this, session.min_interval_days)
            except IntervalTooShort as refusal:
                earliest = refusal.facts["earliest_start"]
            conflicts.append(
                {
                    **({"appointment_id": session.appointment_id} if session.appointment_id else {}),
                    **({"hold_id": session.hold_id} if session.hold_id else {}),
                    "starts_at": session.starts_at,
                    "earliest_start": earliest,
                }
            )
    if conflicts:
        raise IntervalTooShort(
            "A session on this date is closer than the minimum interval to a booked session; "
            "reschedule or cancel it first.",
            earliest_start=conflicts[0]["earliest_start"],
            conflicting_starts=[performed_at],
            conflicts=conflicts,
        )


def check_consultation(
    *, needs_consultation: bool, consultations: list[datetime], start: datetime, valid_days: int | None
) -> None:
    """Rule 1: the first session of a course needs a completed consultation before it."""
    if not needs_consultation:
        return
    window_start = start - timedelta(days=valid_days or 180)
    if not any(window_start <= c < start for c in consultations):
        raise ConsultationRequired(
            f"A completed consultation in the {valid_days or 180} days before the first session is required."
        )


def check_course_cap(*, sessions: Sequence[Dated], start: Dated, max_sessions: int, per_365_days: int | None) -> None:
    """Rule 6: a course's cap, and for ageing at most N sessions in any rolling 365 calendar days."""
    if len(sessions) >= max_sessions:
        raise CourseComplete(
            f"The course has reached its cap of {max_sessions} sessions.",
            max_sessions=max_sessions,
            sessions=len(sessions),
        )
    if per_365_days:
        zone = start.zone or "UTC"
        day, days = date_of(start, zone), [date_of(s, zone) for s in sessions]
        if _over_rolling_cap(day, days, per_365_days):
            # A date leaves a refusing window only when that window's first session falls 365
            # dates behind it: the first allowed date is the start's or one of those.
            later = sorted(d + YEAR for d in days if d + YEAR > day)
            allowed = next(d for d in later if not _over_rolling_cap(d, days, per_365_days))
            raise CourseComplete(
                f"At most {per_365_days} sessions of this course in any 365 days.",
                max_sessions_per_365_days=per_365_days,
                earliest_start=first_instant(allowed, zone),
            )


def _over_rolling_cap(day: date, days: Sequence[date], per_365_days: int) -> bool:
    """ "Any 365 days": 365 consecutive local dates. A window holding `day` begins on a
    session's date (or `day`) at most 364 days before it."""
    return any(
        1 + sum(first <= d < first + YEAR for d in days) > per_365_days
        for first in {d for d in [*days, day] if timedelta(0) <= day - d < YEAR}
    )


def conflicts(needs: list[Need], busy: list[Busy]) -> tuple[dict[str, str], list[Busy]]:
    """Assign a unit to each need and list what blocks the ones that cannot be met.

    Returns ({need key: claimed unit key}, blocking claims). A single resource's
    unit is the resource itself; a pool's is its first free unit (claims.free_unit).
    """
    assigned: dict[str, str] = {}
    blocking: list[Busy] = []
    for need in needs:
        overlapping = [b for b in busy if b.starts_at < need.ends_at and need.starts_at < b.ends_at]
        if need.capacity is None:
            taken = [b for b in overlapping if b.resource == need.resource]
            if taken:
                blocking += taken
            else:
                assigned.setdefault(need_key(need), need.resource)
            continue
        in_pool = [b for b in overlapping if b.resource.startswith(unit_prefix(need.resource))]
        unit = free_unit(need.resource, need.capacity, {b.resource for b in in_pool})
        if unit is not None:
            assigned.setdefault(need_key(need), unit)
        else:
            blocking += in_pool or [Busy(need.resource, need.starts_at, need.ends_at)]
    return assigned, blocking


def assign_units(uses: list[tuple[str, datetime, datetime]], capacity: int) -> tuple[dict[str, int], list[list[str]]]:
    """Give each use (key, start, end) a unit 1..capacity that no overlapping use holds.

    Taken in order of start, each use gets the lowest free unit: on intervals this needs no
    more units than the most uses at one instant, so it fails exactly when more than
    `capacity` overlap. Returns ({key: unit}, clashes): each clash is a use that found no
    unit with the uses holding every unit at its start.
    """
    units: dict[str, int] = {}
    clashes: list[list[str]] = []
    holding: list[tuple[datetime, str]] = []  # (end, key) of the uses holding a unit
    for key, start, end in sorted(uses, key=lambda u: (u[1], u[2], u[0])):
        holding = [(e, k) for e, k in holding if e > start]
        taken = {units[k] for _, k in holding}
        free = [n for n in range(1, capacity + 1) if n not in taken]
        if free:
            units[key] = free[0]
            holding.append((end, key))
        else:
            clashes.append([k for _, k in holding] + [key])
    return units, clashes


def need_key(need: Need) -> str:
    return f"{need.resource}@{need.starts_at.isoformat()}"


def raise_if_blocked(blocking: list[Busy]) -> None:
    if blocking:
        raise slot_unavailable(blocking)


def slot_unavailable(blocking: list[Busy], detail: str = "The slot is no longer free.") -> SlotUnavailable:
    """The 409 naming what collided: resource, ids and times, never another patient's details."""
    return SlotUnavailable(
        detail,
        conflicts=[
            {
                "resource": parse_claim_key(b.resource).kind,
                "resource_id": parse_claim_key(b.resource).object_id,
                "starts_at": b.starts_at,
                "ends_at": b.ends_at,
                **({"appointment_id": b.appointment_id} if b.appointment_id else {}),
                **({"hold_id": b.hold_id} if b.hold_id else {}),
            }
            for b in sorted(set(blocking), key=lambda b: (b.starts_at, b.resource))
        ],
    )
