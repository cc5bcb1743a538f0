"""The availability loader as it was before the set-up cache (nine statements per clinic, claims
and time off a day either side of the window): the oracle the fast path must answer exactly like.

Only the practitioners' preference is today's (the load within the window), since it is the one
definition both share.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from booking.domain.availability import PractitionerHours, Search
from booking.domain.claims import claim_key, unit_prefix
from booking.domain.intervals import Interval, clinic_open, staff_open
from booking.domain.timing import Timing
from booking.domain.weekly import Shift
from booking.services import patients
from booking.services.availability_search import Query, Settings, _naive_utc, _preference
from booking.services.queries import CLAIM_REACH, unavailable
from models import Claim, Clinic, Closure, OpeningHours, Practitioner, Room, TreatmentType, WorkingHours
from models.staff import practitioner_clinics, practitioner_treatment_types


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
    **_: object,  # the fast path's proof: the search reads the stamp once at the end instead
) -> Search:
    reach = (start - CLAIM_REACH, end + CLAIM_REACH)
    conn = db.connection()  # Core rows: plain tuples, without the ORM's per-row work
    shifts = _staff(conn, clinic, treatment_type, query.practitioner_id)
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
    # Pool units ('numbing:<clinic>#2'): a prefix match with '_' (in every id) escaped, so that
    # PostgreSQL turns it into a range on ix_claims_resource_starts (pattern ops) instead of a scan.
    pools = [unit_prefix(claim_key("numbing", clinic.id)), unit_prefix(claim_key("device", clinic.id))]
    if query.patient_id:
        resources.append(claim_key("patient", query.patient_id))
    busy: dict[str, list[Interval]] = {}
    combine = datetime.combine
    starts_at, ends_at = _naive_utc(Claim.starts_at, conn), _naive_utc(Claim.ends_at, conn)
    claims = conn.execute(
        sa.select(Claim.resource, starts_at, ends_at).where(
            sa.or_(Claim.resource.in_(resources), *(Claim.resource.startswith(p, autoescape=True) for p in pools)),
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
    hours.sort(key=_preference(previous, busy, start, end))
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
    conn: Connection, clinic: Clinic, treatment_type: TreatmentType, practitioner_id: str | None
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
        )
        .order_by(Practitioner.id)
    ).all():
        mine = shifts.setdefault(practitioner, [])
        if shift[0] is not None:  # no shifts at this clinic: the outer join's one row of NULLs
            mine.append(tuple(shift))
    return shifts
