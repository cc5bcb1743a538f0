"""Patients' booking links: the personal link a clinic sends a returning patient.

After the consultation the front desk (a staff key) issues the patient a link to the booking page;
the page books with its token as that patient, so every clinical rule is checked for them (the
consultation they had, the interval, their contraindications, the course's caps), where a visitor
without one is a first visit. The token is 256 random bits stored as its SHA-256 only, like a
manage link's; it names one patient of one organization and ends when it expires or is revoked.
What the token shows a booking page is the patient's first name, nothing else of their record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import BookingLinkEnded, InvalidInput, NotFound
from booking.services import queries, tokens
from booking.services.changes import check_version, load
from models import BookingLink, Course, Patient, TreatmentType

DEFAULT_DAYS = 30
MAX_DAYS = 180  # as long as a consultation counts for a first session (rule 1)


def issue(
    db: Session,
    org: str,
    patient_id: str,
    *,
    expires_in_days: int = DEFAULT_DAYS,
    treatment_type_id: str | None = None,
    course_id: str | None = None,
    key_id: str | None = None,
) -> BookingLink:
    """A new link for the patient; its token (`link.token`) is shown once."""
    patient = db.scalar(sa.select(Patient).where(Patient.id == patient_id, Patient.organization_id == org))
    if patient is None:
        raise NotFound(f"No patient with id '{patient_id}'.")
    if treatment_type_id is not None:
        queries.one_of_organization(db, org, TreatmentType, treatment_type_id, "treatment_type_id")
    if course_id is not None:
        course = db.get(Course, course_id)
        if course is None or course.patient_id != patient.id:
            raise InvalidInput({"course_id": [f"Unknown course '{course_id}' for this patient."]})
        if treatment_type_id not in (None, course.treatment_type_id):
            raise InvalidInput({"course_id": ["The course is for another treatment type."]})
        treatment_type_id = course.treatment_type_id
    token, token_digest = tokens.new_token(tokens.BOOKING_LINK_PREFIX)
    link = BookingLink(
        organization_id=org,
        patient_id=patient.id,
        token_digest=token_digest,
        treatment_type_id=treatment_type_id,
        course_id=course_id,
        created_by_key_id=key_id,
        expires_at=clock.now() + timedelta(days=expires_in_days),
    )
    db.add(link)
    db.flush()
    link.token = token
    return link


def link_of(db: Session, org: str, patient_id: str, link_id: str, *, lock: bool = False) -> BookingLink:
    """The patient's live (unrevoked) link; another patient's, organization's or a revoked one is a 404."""
    link = load(db, org, BookingLink, link_id, what="booking link", lock=lock)
    if link.patient_id != patient_id:
        raise NotFound(f"No booking link with id '{link_id}'.")
    return link


def revoke(db: Session, org: str, patient_id: str, link_id: str, expected_version: int | None) -> None:
    """At once: the link books nothing from now on, and the page that opens it is told so."""
    link = link_of(db, org, patient_id, link_id, lock=True)
    check_version(link, expected_version)
    link.revoked_at = clock.now()
    db.flush()


@dataclass(frozen=True)
class Invited:
    """Who a live link books as, and what the page may show of them."""

    link_id: str
    version: int
    expires_at: datetime
    patient_id: str
    first_name: str
    treatment_type_id: str | None
    course_id: str | None

    def shown(self) -> dict:
        """What a booking page is shown: the patient's first name, nothing else of them."""
        return {
            "id": self.link_id,
            "version": self.version,
            "first_name": self.first_name,
            "treatment_type_id": self.treatment_type_id,
            "expires_at": self.expires_at,
        }


def invited(db: Session, org: str, token: str) -> Invited:
    """The patient a live booking link names: 404 for a token that names no link of the
    organization, 410 `booking_link_ended` once it expired or was revoked."""
    link = _link_of(db, org, token)
    if link is None:
        raise NotFound("No booking link has this token: ask the clinic for a new one.")
    if not link.live(clock.now()):
        status = "revoked" if link.revoked_at is not None else "expired"
        raise BookingLinkEnded(f"This booking link was {status}: the clinic can send a new one.", link_status=status)
    return Invited(
        link.id,
        link.version,
        link.expires_at,
        link.patient_id,
        first_name(link.patient.name),
        link.treatment_type_id,
        link.course_id,
    )


def patient_language(db: Session, org: str, token: str) -> str | None:
    """The `language` of the patient a booking link names (live or not), or None."""
    link = _link_of(db, org, token)
    return link.patient.language if link is not None else None


def _link_of(db: Session, org: str, token: str) -> BookingLink | None:
    if not tokens.looks_like(token, tokens.BOOKING_LINK_PREFIX):
        return None
    return db.scalar(
        sa.select(BookingLink).where(
            BookingLink.token_digest == tokens.digest(token), BookingLink.organization_id == org
        )
    )


def first_name(name: str) -> str:
    return name.split()[0] if name.split() else ""
