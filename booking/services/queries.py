"""Loading what the rules need about a patient and a slot, as plain values."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain.calendar_days import Dated
from booking.domain.errors import InvalidInput
from booking.domain.rules import SESSION_KIND, Busy
from booking.domain.vocabulary import CONSULTATION
from models import (
    LIVE_STATUSES,
    Appointment,
    Claim,
    Clinic,
    Course,
    ExternalBusy,
    Hold,
    PastSession,
    TimeOff,
    TreatmentType,
)

# No claim lasts longer than a day (numbing + procedure + aftercare + turnover is at
# most about seven hours, booking/domain/treatments.py), so claims starting a day before a
# range bound every scan of it to an index range on (resource, starts_at).
CLAIM_REACH = timedelta(days=1)


def of_organization(model, org: str):
    """SELECT of the organization's rows of `model` that are still in use: an archived one
    (clinic, room, practitioner, treatment type ...) or a revoked one (API key, feed token) is
    gone for every new use, and for the API a 404 like a missing one."""
    return sa.select(model).where(*in_use(model, org))


def in_use(model, org: str) -> list[sa.ColumnElement[bool]]:
    """The conditions of of_organization(): the organization's, neither archived nor revoked."""
    criteria = [model.organization_id == org]
    if hasattr(model, "archived_at"):
        criteria.append(model.archived_at.is_(None))
    if hasattr(model, "revoked_at"):
        criteria.append(model.revoked_at.is_(None))
    return criteria


def one_of_organization(db: Session, org: str, model, object_id: str | None, field: str, *, share: bool = False):
    """The organization's object named in a request's `field`; another organization's, an
    archived or a missing one is the same InvalidInput ('Unknown id')."""
    query = of_organization(model, org).where(model.id == object_id)
    if share:
        # FOR KEY SHARE: bookings never wait for each other, but one waits for a change of the
        # clinic's device count (booking/services/devices.py) and then reads the count it set, fresh
        # (populate_existing: a hold or appointment loaded before brought the clinic along).
        query = query.with_for_update(read=True, key_share=True).execution_options(populate_existing=True)
    found = db.scalar(query)
    if found is None:
        raise InvalidInput({field: [f"Unknown id '{object_id}'."]})
    return found


def _claims_on(resources: list[str], start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    """Claims on these resources or their pooled units (`<pool>#n`) intersecting [start, end).

    A claim's `pool` is its resource without the unit, so one equality per resource and the
    bounds on starts_at make a tight range on ix_claims_pool_starts, pooled or not.
    """
    return sa.and_(
        Claim.pool.in_(resources),
        Claim.starts_at < end,
        Claim.starts_at >= start - CLAIM_REACH,
        Claim.ends_at > start,
    )


def session_rows(
    db: Session,
    patient_id: str,
    now: datetime,
    *,
    kind: str = SESSION_KIND,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
    completed_only: bool = False,
) -> list[tuple[datetime, str | None, str | None]]:
    """(start, course_id, clinic zone) of a patient's sessions of `kind`: appointments that still
    count, live holds and recorded past sessions (rules 1, 5 and 6 count them all alike), in one
    query. A recorded session has no clinic, so no zone (booking.domain.calendar_days)."""
    appointment_statuses = ("completed",) if completed_only else LIVE_STATUSES
    kind_ids = sa.select(TreatmentType.id).where(TreatmentType.kind == kind)
    zone = sa.select(Clinic.timezone).where(Clinic.id == Appointment.clinic_id).scalar_subquery()
    appointments = sa.select(Appointment.starts_at.label("start"), Appointment.course_id, zone.label("zone")).where(
        Appointment.patient_id == patient_id,
        Appointment.status.in_(appointment_statuses),
        Appointment.treatment_type_id.in_(kind_ids),
        *([Appointment.id != exclude_appointment] if exclude_appointment else []),
    )
    past = sa.select(
        PastSession.performed_at.label("start"), PastSession.course_id, sa.null().cast(sa.String).label("zone")
    ).where(
        PastSession.patient_id == patient_id,
        PastSession.treatment_type_id.in_(kind_ids),
    )
    parts = [appointments, past]
    if not completed_only:
        parts.append(
            sa.select(
                Hold.starts_at.label("start"),
                Hold.course_id,
                sa.select(Clinic.timezone).where(Clinic.id == Hold.clinic_id).scalar_subquery().label("zone"),
            ).where(
                Hold.patient_id == patient_id,
                Hold.live(now),
                Hold.treatment_type_id.in_(kind_ids),
                *([Hold.id != exclude_hold] if exclude_hold else []),
            )
        )
    # A UNION's rows are typed column by column as the union of all parts' types; each is (start, course_id, zone).
    rows = cast(list[tuple[datetime, str | None, str | None]], [tuple(row) for row in db.execute(sa.union_all(*parts))])
    return sorted(rows, key=lambda row: row[0])


def patient_sessions(
    db: Session, patient_id: str, now: datetime, *, course_id: str | None = None, **options: Any
) -> list[Dated]:
    """A patient's sessions (see session_rows) dated in their clinics' zones, of one course
    when `course_id` is given."""
    return [
        Dated(start, zone)
        for start, course, zone in session_rows(db, patient_id, now, **options)
        if course_id is None or course == course_id
    ]


def busy_claims(
    db: Session,
    resources: list[str],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> list[Busy]:
    """Live claims intersecting [start, end) on these resources or their pooled units."""
    busy, _ = claims_in_the_way(
        db, resources, start, end, now, exclude_appointment=exclude_appointment, exclude_hold=exclude_hold
    )
    return busy


def claims_in_the_way(
    db: Session,
    resources: list[str],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> tuple[list[Busy], list[int]]:
    """(live claims, ids of lapsed ones) intersecting [start, end) on these resources or their units.

    One read for both: a booking checks the live ones and deletes the lapsed ones (drop_claims),
    which are usually none, so the common booking makes no DELETE at all.
    """
    query = sa.select(
        Claim.id, Claim.resource, Claim.starts_at, Claim.ends_at, Claim.appointment_id, Claim.hold_id, Claim.expires_at
    ).where(_claims_on(resources, start, end))
    if exclude_appointment:
        query = query.where(sa.or_(Claim.appointment_id.is_(None), Claim.appointment_id != exclude_appointment))
    if exclude_hold:
        query = query.where(sa.or_(Claim.hold_id.is_(None), Claim.hold_id != exclude_hold))
    busy: list[Busy] = []
    lapsed: list[int] = []
    for claim_id, resource, starts_at, ends_at, appointment_id, hold_id, expires_at in db.execute(query).all():
        if expires_at is not None and expires_at <= now:  # Claim.lapsed(now), as in SQL
            lapsed.append(claim_id)
        else:
            busy.append(Busy(resource, starts_at, ends_at, appointment_id, hold_id))
    return busy, lapsed


def drop_claims(db: Session, claim_ids: list[int]) -> None:
    """Delete these claims: lapsed hold claims in the way of a new claim (claims_in_the_way finds them).

    An expired hold already counts for nothing in every check; its rows must still go before
    inserting, or the exclusion constraint would see them.
    """
    if claim_ids:
        db.execute(sa.delete(Claim).where(Claim.id.in_(claim_ids)))


def courses_of_type(db: Session, patient_id: str, treatment_type_id: str) -> list[Course]:
    """The patient's courses of this type, whatever their status (active_course and
    has_finished_course in one read)."""
    return list(
        db.scalars(
            sa.select(Course).where(Course.patient_id == patient_id, Course.treatment_type_id == treatment_type_id)
        ).all()
    )


def patient_history(
    db: Session,
    patient_id: str,
    now: datetime,
    *,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> tuple[list[tuple[datetime, str | None, str | None]], list[datetime]]:
    """(session_rows(...), starts of completed consultations) in one query: what the rules need
    of the patient's history for a session (see session_rows, patient_sessions)."""
    kinds = (SESSION_KIND, CONSULTATION)
    appointments = (
        sa.select(
            Appointment.starts_at.label("start"),
            Appointment.course_id,
            TreatmentType.kind,
            Appointment.status,
            Appointment.id.label("object_id"),
            sa.select(Clinic.timezone).where(Clinic.id == Appointment.clinic_id).scalar_subquery().label("zone"),
        )
        .join(TreatmentType, TreatmentType.id == Appointment.treatment_type_id)
        .where(
            Appointment.patient_id == patient_id,
            Appointment.status.in_(LIVE_STATUSES),
            TreatmentType.kind.in_(kinds),
        )
    )
    past = (
        sa.select(
            PastSession.performed_at.label("start"),
            PastSession.course_id,
            TreatmentType.kind,
            sa.literal("past").label("status"),
            PastSession.id.label("object_id"),
            sa.null().cast(sa.String).label("zone"),  # a recorded session has no clinic, so no zone
        )
        .join(TreatmentType, TreatmentType.id == PastSession.treatment_type_id)
        .where(PastSession.patient_id == patient_id, TreatmentType.kind.in_(kinds))
    )
    holds = (
        sa.select(
            Hold.starts_at.label("start"),
            Hold.course_id,
            TreatmentType.kind,
            sa.literal("hold").label("status"),
            Hold.id.label("object_id"),
            sa.select(Clinic.timezone).where(Clinic.id == Hold.clinic_id).scalar_subquery().label("zone"),
        )
        .join(TreatmentType, TreatmentType.id == Hold.treatment_type_id)
        .where(Hold.patient_id == patient_id, Hold.live(now), TreatmentType.kind == SESSION_KIND)
    )
    sessions: list[tuple[datetime, str | None, str | None]] = []
    consultations: list[datetime] = []
    for start, course_id, kind, status, object_id, zone in db.execute(sa.union_all(appointments, past, holds)).all():
        if kind == SESSION_KIND:
            excluded = (status == "hold" and object_id == exclude_hold) or (
                status in LIVE_STATUSES and object_id == exclude_appointment
            )
            if not excluded:
                sessions.append((start, course_id, zone))
        elif status in ("completed", "past"):
            consultations.append(start)
    return sorted(sessions, key=lambda row: row[0]), sorted(consultations)


def active_course(db: Session, patient_id: str, treatment_type_id: str) -> Course | None:
    """The patient's one active course of this type, when there is exactly one."""
    courses = db.scalars(
        sa.select(Course).where(
            Course.patient_id == patient_id, Course.treatment_type_id == treatment_type_id, Course.status == "active"
        )
    ).all()
    return courses[0] if len(courses) == 1 else None


def has_finished_course(db: Session, patient_id: str, treatment_type_id: str) -> bool:
    """True when the patient has a course of this type that is complete and none active."""
    statuses = set(
        db.scalars(
            sa.select(Course.status).where(
                Course.patient_id == patient_id, Course.treatment_type_id == treatment_type_id
            )
        )
    )
    return "complete" in statuses and "active" not in statuses


def next_earliest_start(db: Session, course: Course, now: datetime) -> datetime | None:
    """When the course's next session may start at the earliest (rule 5, across all clinics).

    None when the course takes no more sessions, or when no session constrains it.
    """
    from booking.domain.rules import earliest_start

    minimum = course.treatment_type.min_interval_days
    if course.status != "active" or not minimum:
        return None
    sessions = patient_sessions(db, course.patient_id, now)
    if not sessions:
        return None
    own = [s.at for s in patient_sessions(db, course.patient_id, now, course_id=course.id)]
    base = max([now, *own])
    # A course is at no clinic: its next session is dated where the patient's latest one was.
    zone = next((s.zone for s in reversed(sessions) if s.zone), "UTC")
    return earliest_start(sessions, Dated(base, zone), minimum)


def unavailable(practitioner_ids: Collection[str], start: datetime, end: datetime) -> sa.CompoundSelect:
    """(practitioner_id, starts_at, ends_at) of time off and external busy times meeting [start, end).

    External calendars' events block exactly like time off (booking/integrations/external_calendars.py).
    """
    return sa.union_all(
        sa.select(TimeOff.practitioner_id, TimeOff.starts_at, TimeOff.ends_at).where(
            TimeOff.practitioner_id.in_(practitioner_ids), TimeOff.starts_at < end, TimeOff.ends_at > start
        ),
        sa.select(ExternalBusy.practitioner_id, ExternalBusy.starts_at, ExternalBusy.ends_at).where(
            ExternalBusy.practitioner_id.in_(practitioner_ids),
            ExternalBusy.starts_at < end,
            ExternalBusy.ends_at > start,
        ),
    )
