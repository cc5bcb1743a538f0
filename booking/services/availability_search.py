"""The availability service: loads a window's data with indexed range queries and
hands it to the pure engine in booking.domain.availability."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection
from sqlalchemy.orm import QueryableAttribute, Session

from booking.domain import clock
from booking.domain import policy as booking_policy
from booking.domain.availability import PractitionerHours, Result, Search, Slot, evening_first, find_slots
from booking.domain.claims import claim_key
from booking.domain.errors import DomainError, InvalidInput
from booking.domain.intervals import Interval, clinic_open, staff_open
from booking.domain.timing import Timing
from booking.domain.weekly import Shift
from booking.services import patients, policies
from booking.services.queries import CLAIM_REACH, of_organization, one_of_organization, unavailable
from models import (
    Appointment,
    Claim,
    Clinic,
    Closure,
    OpeningHours,
    Patient,
    Practitioner,
    Room,
    TreatmentType,
    WorkingHours,
)
from models.staff import practitioner_clinics, practitioner_treatment_types


@dataclass(frozen=True)
class Settings:
    grid_minutes: int = 15
    min_notice: timedelta = timedelta(hours=2)
    horizon: timedelta = timedelta(days=90)
    max_window: timedelta = timedelta(days=31)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Settings:
        """AVAILABILITY_GRID_MINUTES, AVAILABILITY_MIN_NOTICE_MINUTES and AVAILABILITY_HORIZON_DAYS,
        read alike by the web app and the scheduler. A value that is not a whole number in range
        is a startup error naming it, never a search that fails or offers nothing later."""

        def whole(name: str, default: int, lowest: int) -> int:
            text = env.get(name, str(default)).strip()
            if not text.isascii() or not text.isdigit() or int(text) < lowest:
                raise ValueError(f"{name} must be a whole number of at least {lowest}, not {text!r}")
            return int(text)

        return cls(
            grid_minutes=whole("AVAILABILITY_GRID_MINUTES", 15, 1),
            min_notice=timedelta(minutes=whole("AVAILABILITY_MIN_NOTICE_MINUTES", 120, 0)),
            horizon=timedelta(days=whole("AVAILABILITY_HORIZON_DAYS", 90, 1)),
        )


@dataclass(frozen=True)
class Query:
    treatment_type_id: str
    start: datetime
    end: datetime
    clinic_id: str | None = None
    practitioner_id: str | None = None
    room_id: str | None = None
    patient_id: str | None = None
    limit: int = 50
    order: str = "earliest"
    online_only: bool = False  # a frontend's search: practitioners bookable online only


def search(
    db: Session,
    org: str,
    query: Query,
    settings: Settings = Settings(),
    actor: booking_policy.Actor | None = None,
) -> tuple[list[Slot], DomainError | None, dict]:
    """(slots, why the patient's rules ruled the window out, {clinic_id: clinic}).

    With an `actor` bound by the booking policy, each clinic's window and grid are its effective
    policy's (notice, same-day, horizon, grid), and a slot is offered only if that actor could book it."""
    if query.end <= query.start:
        raise InvalidInput({"end": ["Must be after start."]})
    if query.end - query.start > settings.max_window:
        raise InvalidInput({"end": [f"A window spans at most {settings.max_window.days} days."]})
    now = clock.now()
    start, end = max(query.start, now + settings.min_notice), min(query.end, now + settings.horizon)
    treatment_type = one_of_organization(db, org, TreatmentType, query.treatment_type_id, "treatment_type_id")
    clinics = _clinics(db, org, query)
    if query.practitioner_id:
        one_of_organization(db, org, Practitioner, query.practitioner_id, "practitioner_id")
    if query.room_id:
        one_of_organization(db, org, Room, query.room_id, "room_id")
    allows: patients.PatientFacts | None = None  # the patient's rules, when a patient is named
    previous_practitioner = None
    if query.patient_id:
        patient = one_of_organization(db, org, Patient, query.patient_id, "patient_id")
        try:
            course = patients.resolve_course(db, None, patient.id, treatment_type)
        except DomainError as refused:
            return [], refused, clinics
        allows = patients.load_facts(db, patient, treatment_type, course, now)
        previous_practitioner = db.scalar(
            sa.select(Appointment.practitioner_id)
            .where(Appointment.patient_id == patient.id, Appointment.status == "completed")
            .order_by(Appointment.starts_at.desc())
            .limit(1)
        )
    if start >= end:
        return [], None, clinics
    found, refusal = [], None
    for clinic in clinics.values():
        bounds = _policy_bounds(db, org, actor, clinic, treatment_type, query, start, end, now, settings)
        if isinstance(bounds, DomainError):  # not bookable online: nothing here for a frontend
            continue
        c_start, c_end, c_settings, capped = bounds
        if c_start >= c_end:
            continue
        search_ = _build(
            db, clinic, treatment_type, query, c_start, c_end, now, c_settings, allows, previous_practitioner
        )
        for hours in search_.practitioners:  # the days at the policy's daily cap are closed to them
            hours.open[:] = _minus(hours.open, capped.get(hours.practitioner_id, []))
        result: Result = find_slots(search_)
        found += result.slots
        refusal = refusal or result.refusal
    order = _evening_key(clinics) if query.order == "evening" else (lambda slot: slot.starts_at)
    found = sorted(found, key=order)[: query.limit]
    return found, (None if found else refusal), clinics


def _policy_bounds(
    db: Session,
    org: str,
    actor: booking_policy.Actor | None,
    clinic: Clinic,
    treatment_type: TreatmentType,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
) -> tuple[datetime, datetime, Settings, dict[str, list[Interval]]] | DomainError:
    """The clinic's window, grid and capped practitioner days under the actor's effective policy
    (booking/domain/policy.py), or why a frontend may book nothing there."""
    if actor is None or not actor.bound:
        return start, end, settings, {}
    effective = policies.resolve(db, org, actor.defaults, clinic, treatment_type)
    if actor.frontend:
        try:
            booking_policy.check_online(effective, True)
        except DomainError as refused:
            return refused
    zone = ZoneInfo(clinic.timezone)
    first, horizon_end = booking_policy.window(effective, now, zone)
    c_start, c_end = max(query.start, first), min(query.end, horizon_end)
    capped = {}
    if effective.max_sessions_per_practitioner_per_day is not None and c_start < c_end:
        capped = policies.capped_days(db, effective.max_sessions_per_practitioner_per_day, c_start, c_end, zone, now)
    return c_start, c_end, replace(settings, grid_minutes=effective.grid_minutes), capped


def _minus(intervals: list[Interval], blocked: list[Interval]) -> list[Interval]:
    """`intervals` without the `blocked` ones (both sorted, disjoint)."""
    if not blocked:
        return intervals
    result = []
    for s, e in intervals:
        for bs, be in blocked:
            if be <= s or bs >= e:
                continue
            if bs > s:
                result.append((s, bs))
            s = max(s, be)
            if s >= e:
                break
        if s < e:
            result.append((s, e))
    return result


def _clinics(db, org, query: Query) -> dict[str, Clinic]:
    if query.clinic_id:
        return {query.clinic_id: one_of_organization(db, org, Clinic, query.clinic_id, "clinic_id")}
    return {c.id: c for c in db.scalars(of_organization(Clinic, org).order_by(Clinic.id))}


def _evening_key(clinics):
    def key(slot: Slot):
        return evening_first(slot.starts_at, ZoneInfo(clinics[slot.clinic_id].timezone))

    return key


def _build(
    db: Session,
    clinic: Clinic,
    treatment_type: TreatmentType,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
    allows: patients.PatientFacts | None,
    previous: str | None,
) -> Search:
    reach = (start - CLAIM_REACH, end + CLAIM_REACH)
    conn = db.connection()  # Core rows: plain tuples, without the ORM's per-row work
    shifts = _staff(conn, clinic, treatment_type, query.practitioner_id, query.online_only)
    rooms = [
        room_id
        for room_id, capabilities in conn.execute(
            sa.select(Room.id, Room.capabilities)
            .where(
                Room.clinic_id == clinic.id,
                Room.archived_at.is_(None),
                *([Room.id == query.room_id] if query.room_id else []),
            )
            .order_by(Room.id)
        ).all()
        if not treatment_type.required_capability or treatment_type.required_capability in capabilities
    ]
    resources = [claim_key("practitioner", p) for p in shifts] + [claim_key("room", r) for r in rooms]
    # Pool units ('numbing:<clinic>#2') by their pool: with the single resources, one equality
    # each and the time bounds, a tight range on ix_claims_pool_starts whatever the history.
    pools = [claim_key("numbing", clinic.id), claim_key("device", clinic.id)]
    if query.patient_id:
        resources.append(claim_key("patient", query.patient_id))
    busy: dict[str, list[Interval]] = {}
    combine = datetime.combine
    starts_at, ends_at = _naive_utc(Claim.starts_at, conn), _naive_utc(Claim.ends_at, conn)
    claims = conn.execute(
        sa.select(Claim.resource, starts_at, ends_at).where(
            Claim.pool.in_(resources + pools),
            Claim.starts_at >= reach[0],
            Claim.starts_at < reach[1],
            Claim.ends_at > reach[0],
            Claim.live(now),
        )
    ).all()  # all(): iterating fetches row by row
    for resource, claim_start, claim_end in claims:
        # Made aware with combine(): about five times cheaper than .replace(tzinfo=) on CPython 3.11.
        busy.setdefault(resource, []).append(
            (combine(claim_start.date(), claim_start.time(), UTC), combine(claim_end.date(), claim_end.time(), UTC))
        )
    time_off: dict[str, list[Interval]] = {}
    # Time off and external calendars' busy times (booking/integrations/external_calendars.py) block alike.
    for practitioner_id, off_start, off_end in conn.execute(
        sa.select(unavailable(list(shifts), reach[0], reach[1]).subquery())
    ).all():
        time_off.setdefault(practitioner_id, []).append((off_start, off_end))
    # The clinic's hours and closures are the same for every practitioner: expanded once.
    opening = [
        Shift(weekday, start_minute, end_minute, zone=clinic.timezone)
        for weekday, start_minute, end_minute in conn.execute(
            sa.select(OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute).where(
                OpeningHours.clinic_id == clinic.id
            )
        ).all()
    ]
    closures = conn.execute(sa.select(Closure.start_date, Closure.end_date).where(Closure.clinic_id == clinic.id)).all()
    clinic_hours = clinic_open(
        opening=opening, closures=closures, zone=clinic.timezone, start=start, end=end + CLAIM_REACH
    )
    hours = [
        PractitionerHours(
            p,
            staff_open(
                clinic_hours,
                working=[Shift(*s, zone=clinic.timezone) for s in mine],
                time_off=time_off.get(p, []),
                start=start,
                end=end + CLAIM_REACH,
            ),
        )
        for p, mine in shifts.items()
    ]
    hours.sort(key=_preference(previous, busy))
    return Search(
        clinic_id=clinic.id,
        zone=clinic.timezone,
        treatment_type_id=treatment_type.id,
        timing=Timing.of(treatment_type),
        start=start,
        end=end,
        practitioners=hours,
        rooms=rooms,
        busy=busy,
        numbing_seats=clinic.numbing_area_capacity,
        devices=clinic.device_count,
        patient_id=query.patient_id,
        patient_allows=patients.rules_at(allows, clinic.timezone) if allows else None,  # in its clinic's zone
        step_minutes=settings.grid_minutes,
        order=query.order,
        limit=query.limit,
    )


def _staff(
    conn: Connection, clinic: Clinic, treatment_type: TreatmentType, practitioner_id: str | None, online_only: bool
) -> dict[str, list[tuple[int, int, int]]]:
    """Qualified practitioners of the clinic by id, each with their weekly shifts there, in one query."""
    shifts: dict[str, list] = {}
    for practitioner, *shift in conn.execute(
        sa.select(Practitioner.id, WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.end_minute)
        # Joins on the association tables' primary keys (no duplicates): building .any()'s
        # EXISTS costs more than the query.
        .join(
            practitioner_clinics,
            sa.and_(
                practitioner_clinics.c.practitioner_id == Practitioner.id, practitioner_clinics.c.clinic_id == clinic.id
            ),
        )
        .join(
            practitioner_treatment_types,
            sa.and_(
                practitioner_treatment_types.c.practitioner_id == Practitioner.id,
                practitioner_treatment_types.c.treatment_type_id == treatment_type.id,
            ),
        )
        .outerjoin(
            WorkingHours, sa.and_(WorkingHours.practitioner_id == Practitioner.id, WorkingHours.clinic_id == clinic.id)
        )
        .where(
            Practitioner.organization_id == clinic.organization_id,
            Practitioner.archived_at.is_(None),
            *([Practitioner.id == practitioner_id] if practitioner_id else []),
            *([Practitioner.bookable_online.is_(True)] if online_only else []),
        )
        .order_by(Practitioner.id)
    ).all():
        mine = shifts.setdefault(practitioner, [])
        if shift[0] is not None:  # no shifts at this clinic: the outer join's one row of NULLs
            mine.append(tuple(shift))
    return shifts


def _naive_utc(
    column: ColumnElement[datetime] | QueryableAttribute[datetime], connection: Connection
) -> ColumnElement[datetime]:
    """An aware column read as naive UTC, without models.UTCDateTime's per-value hook.

    SQLite stores naive UTC; on PostgreSQL timezone('UTC', ...) turns the timestamptz into
    it, which psycopg reads about three times faster than an aware value.
    """
    if connection.dialect.name == "postgresql":
        column = sa.func.timezone("UTC", column)
    return sa.type_coerce(column, sa.DateTime())


def _preference(
    previous: str | None, busy: dict[str, list[Interval]]
) -> Callable[[PractitionerHours], tuple[bool, float, str]]:
    """Continuity of care first (the patient's last practitioner), then the least loaded."""

    def key(hours: PractitionerHours) -> tuple[bool, float, str]:
        claimed = busy.get(claim_key("practitioner", hours.practitioner_id), [])
        load = sum(((e - s).total_seconds() for s, e in claimed), 0.0)
        return (hours.practitioner_id != previous, load, hours.practitioner_id)

    return key
