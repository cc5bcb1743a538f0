"""Treatments a patient had before coming here, or at another provider.

They count for the interval, the course cap and the consultation rule exactly
like sessions booked here.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from models import Course, PastSession, Patient, TreatmentType

from . import clock
from .appointments import count_session
from .errors import InvalidInput, NotFound


def record_past_session(db: Session, org: str, patient_id: str, *, treatment_type_id: str,
                        performed_at: datetime, course_id: str | None = None, provider: str | None = None,
                        notes: str | None = None) -> PastSession:
    patient = db.scalar(sa.select(Patient).where(Patient.id == patient_id, Patient.organization_id == org)
                        .with_for_update())
    if patient is None:
        raise NotFound(f"No patient with id '{patient_id}'.")
    treatment_type = db.scalar(sa.select(TreatmentType).where(
        TreatmentType.id == treatment_type_id, TreatmentType.organization_id == org))
    if treatment_type is None:
        raise InvalidInput({"treatment_type_id": [f"Unknown id '{treatment_type_id}'."]})
    if performed_at >= clock.now():
        raise InvalidInput({"performed_at": ["Must be in the past."]})
    course = None
    if course_id is not None:
        course = db.get(Course, course_id)
        if course is None or course.patient_id != patient.id:
            raise InvalidInput({"course_id": [f"Unknown course '{course_id}' for this patient."]})
        if course.treatment_type_id != treatment_type.id:
            raise InvalidInput({"course_id": ["The course is for another treatment type."]})
    session = PastSession(organization_id=org, patient_id=patient.id, treatment_type_id=treatment_type.id,
                          course_id=course_id, performed_at=performed_at, provider=provider, notes=notes)
    db.add(session)
    if course is not None:
        count_session(course, performed_at)
    db.flush()
    return session
