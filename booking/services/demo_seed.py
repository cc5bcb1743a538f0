"""The demo organization that `make run` seeds into an empty database."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.courses import course_defaults
from booking.domain.errors import DomainError
from booking.domain.rules import SESSION_KIND
from booking.domain.timing import Timing, instants, occupancy
from booking.domain.treatments import check_treatment_type, defaults_for
from booking.domain.vocabulary import CONSULTATION, MICRONEEDLING, REVIEW
from booking.domain.weekly import Shift, check_week, parse_hhmm
from booking.services import booking_links
from booking.services.appointments import count_session
from booking.services.tenancy import create_organization, find_key, issue_api_key
from models import (
    SCOPES,
    Appointment,
    Claim,
    Clinic,
    Contraindication,
    Course,
    OpeningHours,
    Organization,
    PastSession,
    Patient,
    Practitioner,
    Room,
    TreatmentType,
    WorkingHours,
)

DEMO_NAME = "Demo Skin Clinics"


def ensure_demo(db: Session, saved_token: str | None) -> str | None:
    """Seed an empty database and return the demo admin key.

    With the demo already there, the saved key is returned while it is still
    valid, else a new one is issued. A database holding other organizations
    only is left alone (None).
    """
    if db.scalar(sa.select(sa.func.count()).select_from(Organization)) == 0:
        return _seed(db)
    organization = db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME))
    if organization is None:
        return None
    key = find_key(db, saved_token) if saved_token else None
    if key is not None and key.organization_id == organization.id and "admin" in key.scopes:
        return saved_token
    _, token = issue_api_key(db, organization.id, "demo admin (make run)", SCOPES, channel="staff")
    return token


def ensure_booking_key(db: Session, saved_token: str | None, origins: list[str]) -> str | None:
    """The demo's booking page key (`/book/demo`): a publishable key for `origins` (where `make run`
    serves the page). The saved one is kept while it is live and lists them all; else a new one."""
    organization = db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME))
    if organization is None:
        return None
    key = find_key(db, saved_token) if saved_token else None
    if (
        key is not None
        and key.organization_id == organization.id
        and key.publishable
        and set(origins) <= set(key.origins or ())
    ):
        return saved_token
    _, token = issue_api_key(
        db, organization.id, "demo booking page (make run)", None, kind="publishable", origins=origins
    )
    return token


# The returning patient: her consultation is done, so her booking link books a microneedling session.
RETURNING_EMAIL = "grace@example.com"


def ensure_booking_link(db: Session, saved_token: str | None) -> str | None:
    """The returning patient's booking link token: the saved one while it is live and hers,
    else a new one (shown once, so the caller keeps it). None without the demo or the patient."""
    organization = db.scalar(sa.select(Organization).where(Organization.name == DEMO_NAME))
    if organization is None:
        return None
    patient = db.scalar(
        sa.select(Patient).where(Patient.organization_id == organization.id, Patient.email == RETURNING_EMAIL)
    )
    if patient is None:
        return None
    if saved_token:
        try:
            if booking_links.invited(db, organization.id, saved_token).patient_id == patient.id:
                return saved_token
        except DomainError:  # expired, revoked or unknown (another database's): issue another
            pass
    course = db.scalar(
        sa.select(Course).where(Course.patient_id == patient.id, Course.status == "active").order_by(Course.id)
    )
    link = booking_links.issue(
        db,
        organization.id,
        patient.id,
        treatment_type_id=course.treatment_type_id if course else None,
        course_id=course.id if course else None,
    )
    return link.token


def _hours(clinic_id: str, spec: str) -> list[dict]:
    """'0-4 09:00-17:00' -> one entry per weekday 0..4."""
    days, times = spec.split()
    first, _, last = days.partition("-")
    start, end = (parse_hhmm(t, allow_end_of_day=True) for t in times.split("-"))
    return [
        dict(clinic_id=clinic_id, weekday=d, start_minute=start, end_minute=end)
        for d in range(int(first), int(last or first) + 1)
    ]


def _seed(db: Session) -> str:
    organization, token = create_organization(db, DEMO_NAME)
    org = organization.id
    london = Clinic(
        organization_id=org, name="London Bridge", timezone="Europe/London", address="1 Tooley Street, London SE1"
    )
    new_york = Clinic(
        organization_id=org, name="Manhattan", timezone="America/New_York", address="350 5th Avenue, New York, NY"
    )
    for clinic in (london, new_york):
        clinic.opening_hours = [
            OpeningHours(**{k: v for k, v in h.items() if k != "clinic_id"})
            for spec in ("0-4 08:00-20:00", "5 09:00-17:00")
            for h in _hours("", spec)
        ]
    db.add_all([london, new_york])
    db.flush()
    for clinic, prefix in ((london, "LB"), (new_york, "MH")):
        db.add_all(
            [
                Room(organization_id=org, clinic_id=clinic.id, name=f"{prefix} Treatment 1", capabilities=["needling"]),
                Room(organization_id=org, clinic_id=clinic.id, name=f"{prefix} Treatment 2", capabilities=["needling"]),
                Room(
                    organization_id=org, clinic_id=clinic.id, name=f"{prefix} Consulting", capabilities=["consultation"]
                ),
            ]
        )

    types = {}
    for kind, name in (
        (CONSULTATION, "Skin consultation"),
        (MICRONEEDLING, "Microneedling session"),
        (REVIEW, "Follow-up review"),
    ):
        types[kind] = TreatmentType(
            organization_id=org, name=name, **check_treatment_type({**defaults_for(kind), "kind": kind})
        )
    db.add_all(types.values())
    db.flush()

    staff = [
        ("Dr Amara Okafor", [london], ["0-4 09:00-17:00"]),
        ("Sam Patel", [london], ["1-5 10:00-18:00"]),
        ("Jordan Rivera", [new_york], ["0-4 09:00-17:00"]),
        # Works both clinics: London early in the week, New York later.
        ("Dr Lena Fischer", [london, new_york], ["L0-1 09:00-17:00", "N3-4 09:00-17:00"]),
    ]
    zones = {london.id: london.timezone, new_york.id: new_york.timezone}
    for name, clinics, specs in staff:
        hours = []
        for spec in specs:
            clinic = {"L": london, "N": new_york}.get(spec[0], clinics[0])
            hours += _hours(clinic.id, spec.lstrip("LN"))
        check_week(
            [
                Shift(h["weekday"], h["start_minute"], h["end_minute"], h["clinic_id"], zones[h["clinic_id"]])
                for h in hours
            ]
        )
        db.add(
            Practitioner(
                organization_id=org,
                name=name,
                clinics=clinics,
                treatment_types=list(types.values()),
                working_hours=[WorkingHours(**h) for h in hours],
            )
        )

    now = clock.now()
    patients = [
        Patient(organization_id=org, name="Olivia Bennett", email="olivia@example.com", phone="+442079460101"),
        Patient(organization_id=org, name="Marcus Chen", email="marcus@example.com", phone="+12125550102"),
        Patient(organization_id=org, name="Priya Sharma", email="priya@example.com", phone="+442079460103"),
        Patient(
            organization_id=org,
            name="Ethan Brooks",
            email="ethan@example.com",
            phone="+12125550104",
            contraindication_records=[Contraindication(code="rosacea", recorded_at=now, recorded_by="Dr Amara Okafor")],
        ),
    ]
    db.add_all(patients)
    db.flush()
    microneedling = types[SESSION_KIND]
    # Olivia had her consultation last week, so she can book her first session.
    db.add(
        PastSession(
            organization_id=org,
            patient_id=patients[0].id,
            treatment_type_id=types["consultation"].id,
            performed_at=now - timedelta(days=7),
            provider="London Bridge",
        )
    )
    db.add(
        Course(
            organization_id=org,
            patient_id=patients[0].id,
            **course_defaults(
                microneedling.kind,
                microneedling.max_sessions,
                {"treatment_type_id": microneedling.id, "indication": "acne_scars"},
            ),
        )
    )
    db.flush()
    _completed_session(db, org, patients[2], london, microneedling, types["consultation"], now)
    _returning_patient(db, org, microneedling, types["consultation"], now)
    return token


def _returning_patient(
    db: Session, org: str, session_type: TreatmentType, consultation: TreatmentType, now: datetime
) -> None:
    """Grace had her consultation at London Bridge five days ago and a course was opened: the
    clinic sends her a booking link (`ensure_booking_link`), with which she books her first session."""
    grace = Patient(organization_id=org, name="Grace Whitfield", email=RETURNING_EMAIL, phone="+442079460105")
    db.add(grace)
    db.flush()
    db.add(
        PastSession(
            organization_id=org,
            patient_id=grace.id,
            treatment_type_id=consultation.id,
            performed_at=now - timedelta(days=5),
            provider="London Bridge",
        )
    )
    db.add(
        Course(
            organization_id=org,
            patient_id=grace.id,
            **course_defaults(
                session_type.kind,
                session_type.max_sessions,
                {"treatment_type_id": session_type.id, "indication": "acne_scars"},
            ),
        )
    )
    db.flush()


def _completed_session(
    db: Session,
    org: str,
    patient: Patient,
    clinic: Clinic,
    session_type: TreatmentType,
    consultation: TreatmentType,
    now: datetime,
) -> None:
    """Priya's first session, this morning or the last weekday's, done: the scheduler
    (`make run` starts it) proposes and holds her next one four to six weeks on."""
    zone = ZoneInfo(clinic.timezone)
    starts_at = datetime.combine(now.astimezone(zone).date(), time(9), zone)
    while starts_at + timedelta(hours=3) > now or starts_at.weekday() > 4:
        starts_at = datetime.combine(starts_at.date() - timedelta(days=1), time(9), zone)
    practitioner = db.scalars(
        sa.select(Practitioner).where(Practitioner.organization_id == org, Practitioner.name == "Dr Amara Okafor")
    ).one()
    room = db.scalars(sa.select(Room).where(Room.clinic_id == clinic.id, Room.name == "LB Treatment 1")).one()
    db.add(
        PastSession(
            organization_id=org,
            patient_id=patient.id,
            treatment_type_id=consultation.id,
            performed_at=starts_at - timedelta(days=14),
            provider=clinic.name,
        )
    )
    course = Course(
        organization_id=org,
        patient_id=patient.id,
        **course_defaults(
            session_type.kind,
            session_type.max_sessions,
            {"treatment_type_id": session_type.id, "indication": "acne_scars"},
        ),
    )
    db.add(course)
    db.flush()
    timing = Timing.of(session_type)
    at = instants(timing, starts_at)
    session = Appointment(
        organization_id=org,
        clinic_id=clinic.id,
        practitioner_id=practitioner.id,
        room_id=room.id,
        patient_id=patient.id,
        treatment_type_id=session_type.id,
        course_id=course.id,
        area="face",
        starts_at=at.starts_at,
        procedure_starts_at=at.procedure_starts_at,
        ends_at=at.ends_at,
        status="completed",
        completed_at=at.ends_at,
        created_at=starts_at - timedelta(days=7),
    )
    db.add(session)
    db.flush()
    for need in occupancy(
        timing, at, clinic_id=clinic.id, practitioner_id=practitioner.id, room_id=room.id, patient_id=patient.id
    ):
        db.add(
            Claim(
                organization_id=org,
                resource=need.resource,
                starts_at=need.starts_at,
                ends_at=need.ends_at,
                appointment_id=session.id,
            )
        )
    count_session(course, at.starts_at)
