"""Courses (rule 6): opening and changing one, at most one active per patient and treatment type."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking.domain.courses import course_defaults
from booking.domain.errors import CourseAlreadyActive, InvalidInput
from booking.services.changes import load, load_for_change
from booking.services.queries import of_organization
from models import Course, Patient, TreatmentType


def open_for(db: Session, org: str, patient_id: str, data: dict[str, Any]) -> Course:
    """Open a course for the organization's patient, of one of its treatment types."""
    patient = load(db, org, Patient, patient_id)
    treatment_type = db.scalar(of_organization(TreatmentType, org).where(TreatmentType.id == data["treatment_type_id"]))
    if treatment_type is None:
        raise InvalidInput({"treatment_type_id": ["Unknown treatment type."]})
    return open_course(db, org, patient, treatment_type, data)


def change(db: Session, org: str, course_id: str, data: dict[str, Any], expected_version: int | None) -> Course:
    return change_course(db, load_for_change(db, org, Course, course_id, expected_version), data)


def open_course(db: Session, org: str, patient: Patient, treatment_type: TreatmentType, data: dict[str, Any]) -> Course:
    course = Course(
        organization_id=org,
        patient_id=patient.id,
        **course_defaults(treatment_type.kind, treatment_type.max_sessions, data),
    )
    _save(db, course, add=True)
    return course


def change_course(db: Session, course: Course, data: dict[str, Any]) -> Course:
    treatment_type = db.get_one(TreatmentType, course.treatment_type_id)
    current = {
        f: getattr(course, f) for f in ("indication", "max_sessions", "max_sessions_per_365_days", "status", "notes")
    }
    values = course_defaults(
        treatment_type.kind,
        treatment_type.max_sessions,
        {**current, **data, "treatment_type_id": course.treatment_type_id},
    )
    with db.no_autoflush:
        for field, value in values.items():
            setattr(course, field, value)
        _save(db, course)
    return course


def _save(db: Session, course: Course, *, add: bool = False) -> None:
    """One active course per patient and treatment type (rule 6): with two, a session booked
    without `course_id` would count on neither cap. The check names the active course; the
    partial unique index uq_courses_one_active refuses what a concurrent writer slipped in."""
    if course.status == "active":
        with db.no_autoflush:
            active = _other_active(db, course)
        if active:
            raise _already(active)
    try:
        with db.begin_nested():
            if add:
                db.add(course)
            db.flush()
    except IntegrityError as exc:
        raise _already(_other_active(db, course)) from exc


def _other_active(db: Session, course: Course) -> str | None:
    return db.scalar(
        sa.select(Course.id).where(
            Course.patient_id == course.patient_id,
            Course.treatment_type_id == course.treatment_type_id,
            Course.status == "active",
            *([Course.id != course.id] if course.id else []),
        )
    )


def _already(course_id: str | None) -> CourseAlreadyActive:
    return CourseAlreadyActive(
        "The patient already has an active course of this treatment type; complete or close it first.",
        course_id=course_id,
    )
