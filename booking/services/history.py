"""Treatments a patient had before coming here, or at another provider.

They count for the interval, the course cap and the consultation rule exactly
like sessions booked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Row
from sqlalchemy.orm import Session

from booking.domain import clock, rules
from booking.domain.errors import IntervalTooShort, InvalidInput, NotFound
from booking.services import patients, queries
from booking.services.appointments import count_session
from models import Appointment, Clinic, Hold, PastSession, Patient, TreatmentType


def record_past_session(
    db: Session,
    org: str,
    patient_id: str,
    *,
    treatment_type_id: str,
    performed_at: datetime,
    course_id: str | None = None,
    provider: str | None = None,
    notes: str | None = None,
) -> PastSession:
    patient = db.scalar(
        sa.select(Patient).where(Patient.id == patient_id, Patient.organization_id == org).with_for_update()
    )
    if patient is None:
        raise NotFound(f"No patient with id '{patient_id}'.")
    # An archived treatment type is unknown here as it is to a booking.
    treatment_type = queries.one_of_organization(db, org, TreatmentType, treatment_type_id, "treatment_type_id")
    now = clock.now()
    if performed_at >= now:
        raise InvalidInput({"performed_at": ["Must be in the past."]})
    course = None if course_id is None else patients.course_of(db, course_id, patient.id, treatment_type)
    if treatment_type.kind == rules.SESSION_KIND:
        # Under the patient's lock taken above, like a booking: of a booking and a record
        # racing for the same weeks, the second sees the first.
        _check_booked_sessions(db, patient.id, performed_at, now)
    session = PastSession(
        organization_id=org,
        patient_id=patient.id,
        treatment_type_id=treatment_type.id,
        course_id=course_id,
        performed_at=performed_at,
        provider=provider,
        notes=notes,
    )
    db.add(session)
    if course is not None:
        count_session(course, performed_at)
    db.flush()
    return session


def _check_booked_sessions(db: Session, patient_id: str, performed_at: datetime, now: datetime) -> None:
    """A session recorded inside a booked session's minimum interval would break rule 5 for it."""
    kind = TreatmentType.kind == rules.SESSION_KIND
    appointments = (
        sa.select(Appointment.starts_at, TreatmentType.min_interval_days, Appointment.id, sa.null(), Clinic.timezone)
        .join(TreatmentType)
        .join(Clinic)
        .where(Appointment.patient_id == patient_id, Appointment.status.in_(("booked", "checked_in")), kind)
    )
    holds = (
        sa.select(Hold.starts_at, TreatmentType.min_interval_days, sa.null(), Hold.id, Clinic.timezone)
        .join(TreatmentType)
        .join(Clinic)
        .where(Hold.patient_id == patient_id, Hold.live(now), kind)
    )
    rows: Sequence[Row[*tuple[Any, ...]]] = db.execute(sa.union_all(appointments, holds)).all()
    booked = [
        rules.Booked(start, days, appointment_id, hold_id, zone) for start, days, appointment_id, hold_id, zone in rows
    ]
    try:
        rules.check_recorded_session(performed_at, booked, queries.patient_sessions(db, patient_id, now))
    except IntervalTooShort as error:
        first = next(r for r in rows if error.facts["conflicts"][0]["starts_at"] == r[0])
        raise error.localized(ZoneInfo(first[4])) from None
