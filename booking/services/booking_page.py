"""What a booking page does with a publishable key: read what may be booked, hold a slot for a
visitor who has not registered yet, and book that hold with its token while registering them.

A hold placed here has no patient: it is checked as a first visit (no history, no recorded
contraindication) and claims everything but the patient. It is booked with its hold token alone
(`book_hold`), which registers the patient and then books the hold for them through the one
booking service every key uses, so every rule is checked again, now with the patient.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock, policy
from booking.domain.errors import HoldExpired, InvalidInput, InvalidTransition, ManageLinkEnded, NotFound
from booking.domain.policy import Actor
from booking.services import appointments, booking_links, patient_records, policies, tokens
from booking.services.appointments import SlotRequest
from booking.services.queries import in_use
from booking.services.regions import country_of_zone
from models import Appointment, Clinic, Course, Hold, Patient, Practitioner, TreatmentType
from models.staff import practitioner_clinics, practitioner_treatment_types

HOLD_TOKEN_FIELD = "hold_token"


def bookable_clinics(db: Session, org: str, actor: Actor) -> list[Clinic]:
    """The clinics whose policy lets a frontend book (`bookable_online`), by name."""
    clinics = db.scalars(sa.select(Clinic).where(*in_use(Clinic, org)).order_by(Clinic.name, Clinic.id))
    return [c for c in clinics if policies.resolve(db, org, actor.defaults, c, None).bookable_online]


def bookable_treatment_types(db: Session, org: str, actor: Actor) -> list[TreatmentType]:
    types = db.scalars(sa.select(TreatmentType).where(*in_use(TreatmentType, org)).order_by(TreatmentType.name))
    return [t for t in types if policies.resolve(db, org, actor.defaults, None, t).bookable_online]


@dataclass(frozen=True)
class PublicPractitioner:
    id: str
    name: str
    clinic_ids: list[str]
    treatment_type_ids: list[str]


def bookable_practitioners(db: Session, org: str, actor: Actor) -> list[PublicPractitioner]:
    """Practitioners bookable online, each with the bookable clinics and treatment types only."""
    clinic_ids = {c.id for c in bookable_clinics(db, org, actor)}
    type_ids = {t.id for t in bookable_treatment_types(db, org, actor)}
    practitioners = list(
        db.scalars(
            sa.select(Practitioner)
            .where(*in_use(Practitioner, org), Practitioner.bookable_online.is_(True))
            .order_by(Practitioner.name, Practitioner.id)
        )
    )
    ids = [p.id for p in practitioners]
    at: dict[str, list[str]] = {}
    for pid, cid in db.execute(
        sa.select(practitioner_clinics.c.practitioner_id, practitioner_clinics.c.clinic_id)
        .where(practitioner_clinics.c.practitioner_id.in_(ids))
        .order_by(practitioner_clinics.c.clinic_id)
    ):
        if cid in clinic_ids:
            at.setdefault(pid, []).append(cid)
    does: dict[str, list[str]] = {}
    for pid, tid in db.execute(
        sa.select(practitioner_treatment_types.c.practitioner_id, practitioner_treatment_types.c.treatment_type_id)
        .where(practitioner_treatment_types.c.practitioner_id.in_(ids))
        .order_by(practitioner_treatment_types.c.treatment_type_id)
    ):
        if tid in type_ids:
            does.setdefault(pid, []).append(tid)
    return [
        PublicPractitioner(p.id, p.name, at[p.id], does.get(p.id, []))
        for p in practitioners
        if at.get(p.id)  # one who works at no bookable clinic is not shown
    ]


def place_hold(
    db: Session, org: str, req: SlotRequest, actor: Actor, hold_minutes: int | None, patient_token: str | None = None
) -> Hold:
    """A hold with no patient, or, with a patient's booking link token, the link's patient's (every
    rule checked for them); its token (`hold.hold_token`, shown once) is what books it."""
    if req.patient_id is not None or req.course_id is not None:
        raise InvalidInput({"patient_id": ["A booking page's hold names no patient: they register as it is booked."]})
    if patient_token is not None:
        req = _as_invited(db, req, booking_links.invited(db, org, patient_token))
    hold = appointments.place_hold(db, org, req, actor=actor, hold_minutes=hold_minutes)
    token, hold.hold_token_digest = tokens.new_token(tokens.HOLD_TOKEN_PREFIX)
    hold.hold_token = token
    db.flush()
    return hold


def book_hold(
    db: Session,
    org: str,
    token: str,
    patient: dict | None,
    actor: Actor,
    area: str | None = None,
    patient_token: str | None = None,
) -> tuple[Appointment, list[str]]:
    """Register the patient (name, e-mail, phone as E.164, the clinic's terms accepted) and book
    the hold the token names for them; one transaction, so a refusal registers nobody. With a
    patient's booking link token instead, the hold is booked for the link's patient.
    Returns the appointment (with its `manage_token`) and the pre-care instructions."""
    hold = _hold_of_token(db, org, token)
    status = appointments.hold_status(hold, clock.now())
    if status == "booked":
        raise InvalidTransition("This hold is already booked.", current_status=status)
    if status != "active":
        raise HoldExpired(f"The hold is {status}; search availability again.", hold_id=hold.id)
    if patient_token is not None or hold.patient_id is not None:
        return _book_as_invited(db, org, hold, patient_token, actor, area)
    assert patient is not None  # the schema asks for one of the two
    if not patient.get("accept_terms"):
        raise InvalidInput({"patient": {"accept_terms": ["Accept the clinic's terms to book."]}})
    fields = {k: patient[k] for k in ("name", "email", "phone", "language") if patient.get(k) is not None}
    # A national number (020 7946 0000) is read in the country of the clinic being booked.
    try:
        region = country_of_zone().get(hold.clinic.timezone)  # the booked clinic's country
        registered = patient_records.register(db, org, fields, region=region)
    except InvalidInput as error:  # the phone: the fields are the patient's, in the body's shape
        raise InvalidInput({"patient": error.errors}) from None
    registered.terms_accepted_at = clock.now()
    hold.patient_id = registered.id
    db.flush()
    appointment = appointments.book_from_hold(db, org, hold.id, area=area, actor=actor)
    return appointment, pre_care(db, appointment)


def _as_invited(db: Session, req: SlotRequest, invited: booking_links.Invited) -> SlotRequest:
    """The request as the link's patient's, on the link's course when it is of this treatment."""
    return replace(req, patient_id=invited.patient_id, course_id=_links_course(db, invited, req.treatment_type_id))


def _links_course(db: Session, invited: booking_links.Invited, treatment_type_id: str) -> str | None:
    """The link's course, for a session of its treatment; else None (the patient's active one counts)."""
    if invited.course_id is None:
        return None
    course_type = db.scalar(sa.select(Course.treatment_type_id).where(Course.id == invited.course_id))
    return invited.course_id if course_type == treatment_type_id else None


def _book_as_invited(
    db: Session, org: str, hold: Hold, patient_token: str | None, actor: Actor, area: str | None
) -> tuple[Appointment, list[str]]:
    """A hold placed with a booking link is booked with the same link: its hold token alone, or a
    new patient's details, must not book a slot held for (and checked as) someone else."""
    if patient_token is None:
        raise InvalidInput({"patient_token": ["This hold was placed with a booking link: book it with that link."]})
    invited = booking_links.invited(db, org, patient_token)
    if hold.patient_id is None:  # held as a first visit: booking it checks every rule for the patient
        hold.patient_id = invited.patient_id
    elif hold.patient_id != invited.patient_id:
        raise InvalidInput({"patient_token": ["This hold was placed with another booking link."]})
    course_id = _links_course(db, invited, hold.treatment_type_id)
    db.flush()
    appointment = appointments.book_from_hold(db, org, hold.id, course_id=course_id, area=area, actor=actor)
    return appointment, pre_care(db, appointment)


def _hold_of_token(db: Session, org: str, token: str) -> Hold:
    hold = None
    if tokens.looks_like(token, tokens.HOLD_TOKEN_PREFIX):
        hold = db.scalar(
            sa.select(Hold)
            .where(Hold.hold_token_digest == tokens.digest(token), Hold.organization_id == org)
            .with_for_update(of=Hold)
            .execution_options(populate_existing=True)
        )
    if hold is None:
        raise NotFound("No hold has this hold token: hold a slot again.")
    return hold


def pre_care(db: Session, appointment: Appointment) -> list[str]:
    """What the patient is told before the visit (rule 10): the session's instructions; none for
    a consultation or a review. Message ids of the catalogs: the caller shows them in the patient's
    language (booking.i18n.Text.all)."""
    from booking.domain.rules import SESSION_KIND
    from booking.services.events import PRE_CARE

    kind = db.scalar(sa.select(TreatmentType.kind).where(TreatmentType.id == appointment.treatment_type_id))
    return list(PRE_CARE) if kind == SESSION_KIND else []


def effective_policy(db: Session, org: str, actor: Actor, appointment: Appointment) -> policy.Policy:
    treatment_type = db.get_one(TreatmentType, appointment.treatment_type_id)
    return policies.resolve(db, org, actor.defaults, appointment.clinic, treatment_type)


# Patients' manage links -----------------------------------------------------------------------
# The link's token is the patient's: whatever key the page calls with, a change through it is a
# frontend's, bound by the frontend policy (cut-off, notice, grid, every clinical rule).


def managed(db: Session, org: str, token: str, *, lock: bool = False) -> Appointment:
    """The appointment the manage token names: 404 for a token that names none (or another
    organization's), 410 `manage_link_ended` once it is no longer booked."""
    appointment = None
    if tokens.looks_like(token, tokens.MANAGE_TOKEN_PREFIX):
        query = sa.select(Appointment).where(
            Appointment.manage_token_digest == tokens.digest(token), Appointment.organization_id == org
        )
        if lock:
            query = query.with_for_update(of=Appointment).execution_options(populate_existing=True)
        appointment = db.scalar(query)
    if appointment is None:
        raise NotFound("No booking has this manage link.")
    if appointment.status != "booked":
        raise ManageLinkEnded(
            f"This manage link ended with the booking, which is {appointment.status}"
            + (" (moved: the new booking has its own link)." if appointment.rescheduled_to else "."),
            appointment_status=appointment.status,
        )
    return appointment


def patient_language(db: Session, org: str, token: str) -> str | None:
    """The `language` of the patient a manage token names (any status), or None."""
    if not tokens.looks_like(token, tokens.MANAGE_TOKEN_PREFIX):
        return None
    return db.scalar(
        sa.select(Patient.language)
        .join(Appointment, Appointment.patient_id == Patient.id)
        .where(Appointment.manage_token_digest == tokens.digest(token), Appointment.organization_id == org)
    )


def frontend(actor: Actor) -> Actor:
    return replace(actor, channel=policy.FRONTEND, override_reason=None)


def cancel_managed(
    db: Session, org: str, token: str, actor: Actor, note: str | None, expected_version: int | None
) -> Appointment:
    appointment = managed(db, org, token, lock=True)
    return appointments.cancel(
        db, org, appointment.id, "patient_request", note, expected_version=expected_version, actor=frontend(actor)
    )


def reschedule_managed(
    db: Session, org: str, token: str, actor: Actor, changes: dict, expected_version: int | None
) -> tuple[Appointment, list[str]]:
    appointment = managed(db, org, token, lock=True)
    moved = appointments.reschedule(db, org, appointment.id, changes, expected_version, frontend(actor))
    return moved, pre_care(db, moved)
