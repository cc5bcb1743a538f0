"""A patient's rules for one treatment type (rules 1, 2, 5, 6): facts loaded once,
then checked as a pure function for any start, by the booking engine and by the
availability search alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from booking.domain import rules
from booking.domain.calendar_days import Dated
from booking.domain.errors import ConsultationRequired, Contraindicated, CourseComplete, IntervalTooShort, InvalidInput
from booking.services import queries
from booking.services.availability_cache import TreatmentFacts
from models import Course, Patient, TreatmentType


@dataclass(frozen=True)
class PatientFacts:
    kind: str
    contraindications: tuple[rules.Recorded, ...]  # unresolved; each checked on the session's local date
    min_interval_days: int | None
    consultation_valid_days: int | None
    sessions: tuple[Dated, ...]  # every session of the patient (this kind), any course, any clinic
    consultations: tuple[datetime, ...]  # completed or recorded consultations
    course_id: str | None = None
    course_status: str | None = None
    max_sessions: int | None = None
    per_365_days: int | None = None
    course_sessions: tuple[Dated, ...] = ()


# The refusals check_patient can give: what an availability answer's `reason.code` may be.
PATIENT_REFUSALS = (Contraindicated, IntervalTooShort, CourseComplete, ConsultationRequired)


def check_patient(facts: PatientFacts, start: datetime, zone: str) -> None:
    """The patient's rules for a session starting at `start` at a clinic in `zone` (its local
    date is what rules 5 and 6 count from)."""
    session = Dated(start, zone)
    rules.check_contraindications(facts.kind, facts.contraindications, session)
    if facts.kind != rules.SESSION_KIND:
        return
    rules.check_interval(list(facts.sessions), session, facts.min_interval_days)
    if facts.course_id is not None:
        assert facts.max_sessions is not None  # load_facts sets both from the course
        if facts.course_status != "active":
            raise CourseComplete(
                f"The course is {facts.course_status}; open a new course after review.", course_id=facts.course_id
            )
        rules.check_course_cap(
            sessions=list(facts.course_sessions),
            start=session,
            max_sessions=facts.max_sessions,
            per_365_days=facts.per_365_days,
        )
        first_of_course = not any(s.at < start for s in facts.course_sessions)
    else:
        first_of_course = not any(s.at < start for s in facts.sessions)
    rules.check_consultation(
        needs_consultation=first_of_course,
        consultations=list(facts.consultations),
        start=start,
        valid_days=facts.consultation_valid_days,
    )


def rules_at(facts: PatientFacts, zone: str) -> Callable[[datetime], None]:
    """check_patient for any start at a clinic in `zone` (for the availability search)."""
    return partial(_check_at, facts, zone)


def _check_at(facts: PatientFacts, zone: str, start: datetime) -> None:
    check_patient(facts, start, zone)


def first_visit_facts(treatment_type: TreatmentType | TreatmentFacts) -> PatientFacts:
    """The facts of someone the clinic has never seen (a booking page's visitor before they register):
    no contraindication recorded, no session, no consultation, no course."""
    return PatientFacts(
        kind=treatment_type.kind,
        contraindications=(),
        min_interval_days=treatment_type.min_interval_days,
        consultation_valid_days=treatment_type.consultation_valid_days,
        sessions=(),
        consultations=(),
    )


def load_facts(
    db: Session,
    patient: Patient,
    treatment_type: TreatmentType | TreatmentFacts,
    course: Course | None,
    now: datetime,
    **excluded: Any,
) -> PatientFacts:
    """`excluded` (exclude_appointment, exclude_hold): the booking being replaced or consumed."""
    sessions: tuple[Dated, ...] = ()
    consultations: tuple[datetime, ...] = ()
    course_sessions: tuple[Dated, ...] = ()
    if treatment_type.kind == rules.SESSION_KIND:
        rows, completed_consultations = queries.patient_history(db, patient.id, now, **excluded)  # one query
        sessions = tuple(Dated(start, zone) for start, _, zone in rows)
        if course is not None:
            course_sessions = tuple(Dated(start, zone) for start, course_id, zone in rows if course_id == course.id)
        consultations = tuple(completed_consultations)
    return PatientFacts(
        kind=treatment_type.kind,
        contraindications=tuple(r.recorded for r in patient.contraindication_records if r.resolved_at is None),
        min_interval_days=treatment_type.min_interval_days,
        consultation_valid_days=treatment_type.consultation_valid_days,
        sessions=sessions,
        consultations=consultations,
        course_id=course.id if course else None,
        course_status=course.status if course else None,
        max_sessions=course.max_sessions if course else None,
        per_365_days=course.max_sessions_per_365_days if course else None,
        course_sessions=course_sessions,
    )


def resolve_course(
    db: Session, course_id: str | None, patient_id: str, treatment_type: TreatmentType | TreatmentFacts
) -> Course | None:
    """The course a session counts on: the one named, else the patient's one active course of the type."""
    if course_id is None:
        if treatment_type.kind != rules.SESSION_KIND:
            return None
        courses = queries.courses_of_type(db, patient_id, treatment_type.id)  # one read, both questions
        active = [c for c in courses if c.status == "active"]
        if not active and any(c.status == "complete" for c in courses):
            # Without this, leaving out course_id would book past a course's cap.
            raise CourseComplete("The patient's course is complete; open a new course after review.")
        return active[0] if len(active) == 1 else None
    return course_of(db, course_id, patient_id, treatment_type)


def course_of(db: Session, course_id: str, patient_id: str, treatment_type: TreatmentType | TreatmentFacts) -> Course:
    """The course named for a session of the patient: it must be theirs and of this treatment type."""
    course = db.get(Course, course_id)
    if course is None or course.patient_id != patient_id:
        raise InvalidInput({"course_id": [f"Unknown course '{course_id}' for this patient."]})
    if course.treatment_type_id != treatment_type.id:
        raise InvalidInput({"course_id": ["The course is for another treatment type."]})
    return course
