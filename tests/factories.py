"""ORM factories with defaults: `make_clinic(db, org, **overrides)` and friends.

They write rows straight through a session, as the services see them, with the same
defaults the API's create views apply (a treatment type takes its kind's timings), so a
test that is not about HTTP sets its world up in milliseconds. Each returns the ORM
object, flushed; the caller commits. `as_json` renders one as the API would answer it,
for tests that go on over HTTP.
"""

from __future__ import annotations

from datetime import datetime, time
from itertools import count

from sqlalchemy.orm import Session

from booking.domain.treatments import check_treatment_type, defaults_for
from booking.services.appointments import SlotRequest, book, place_hold
from booking.services.courses import open_course
from booking.services.history import record_past_session
from booking.services.tenancy import create_organization
from models import (
    Appointment,
    Clinic,
    Course,
    Hold,
    OpeningHours,
    PastSession,
    Patient,
    Practitioner,
    Room,
    TreatmentType,
)
from models import WorkingHours as Shift

_organizations = count(1)

MONDAY_TO_SATURDAY = range(6)


def minutes(hhmm: str) -> int:
    clock = time.fromisoformat(hhmm) if hhmm != "24:00" else None
    return 24 * 60 if clock is None else clock.hour * 60 + clock.minute


def _add(db: Session, row):
    db.add(row)
    db.flush()
    return row


def make_organization(db: Session, name: str | None = None) -> tuple[str, str]:
    """(organization id, admin API key) of a fresh organization."""
    organization, token = create_organization(db, name or f"Organization {next(_organizations)}")
    return organization.id, token


def make_clinic(db: Session, org: str, *, opening=("08:00", "20:00"), days=MONDAY_TO_SATURDAY, **overrides) -> Clinic:
    """A clinic in London open 08:00-20:00 Monday to Saturday."""
    fields = {"name": "Soho", "timezone": "Europe/London", "numbing_area_capacity": 0, **overrides}
    hours = [OpeningHours(weekday=d, start_minute=minutes(opening[0]), end_minute=minutes(opening[1])) for d in days]
    return _add(db, Clinic(organization_id=org, opening_hours=hours, **fields))


def make_room(db: Session, clinic: Clinic, **overrides) -> Room:
    fields = {"name": "Room 1", "capabilities": ["needling"], **overrides}
    return _add(db, Room(organization_id=clinic.organization_id, clinic_id=clinic.id, **fields))


def make_treatment_type(db: Session, org: str, kind: str = "microneedling", **overrides) -> TreatmentType:
    """The kind's default timings and limits, as POST /v1/treatment-types gives them."""
    values = check_treatment_type({**defaults_for(kind), "name": kind.title(), "kind": kind, **overrides})
    return _add(db, TreatmentType(organization_id=org, **values))


def make_practitioner(
    db: Session,
    clinics: list[Clinic],
    treatment_types: list[TreatmentType] = (),
    *,
    hours=("09:00", "17:00"),
    days=MONDAY_TO_SATURDAY,
    **overrides,
) -> Practitioner:
    """Qualified for `treatment_types`, working `hours` on `days` at the first clinic (hours=None: no week)."""
    week = [] if hours is None else [shift(clinics[0], d, *hours) for d in days]
    fields = {"name": "Dr Who", **overrides}
    practitioner = Practitioner(
        organization_id=clinics[0].organization_id,
        clinics=list(clinics),
        treatment_types=list(treatment_types),
        working_hours=week,
        **fields,
    )
    return _add(db, practitioner)


def shift(clinic: Clinic, weekday: int, start: str, end: str) -> Shift:
    return Shift(clinic_id=clinic.id, weekday=weekday, start_minute=minutes(start), end_minute=minutes(end))


def make_patient(db: Session, org: str, **overrides) -> Patient:
    fields = {"name": "Pat Smith", "email": "pat@example.com", **overrides}
    return _add(db, Patient(organization_id=org, **fields))


def make_past_session(
    db: Session, patient: Patient, treatment_type: TreatmentType, performed_at: datetime, **fields
) -> PastSession:
    """Through the service the API records past sessions with, so its checks apply."""
    return record_past_session(
        db,
        patient.organization_id,
        patient.id,
        treatment_type_id=treatment_type.id,
        performed_at=performed_at,
        **fields,
    )


def make_course(db: Session, patient: Patient, treatment_type: TreatmentType, **overrides) -> Course:
    """An active course, its cap from the indication (acne scars) as POST .../courses opens it."""
    data = {"treatment_type_id": treatment_type.id, "indication": "acne_scars", **overrides}
    return open_course(db, patient.organization_id, patient, treatment_type, data)


def slot_request(
    clinic: Clinic,
    practitioner: Practitioner,
    room: Room,
    treatment_type: TreatmentType,
    patient: Patient,
    starts_at: datetime,
    **fields,
) -> SlotRequest:
    return SlotRequest(clinic.id, practitioner.id, room.id, treatment_type.id, patient.id, starts_at, **fields)


def make_appointment(db: Session, request: SlotRequest) -> Appointment:
    """Booked through the booking service, so every rule and claim is as in production."""
    return book(db, request_org(db, request), request)


def make_hold(db: Session, request: SlotRequest, **fields) -> Hold:
    return place_hold(db, request_org(db, request), request, **fields)


def request_org(db: Session, request: SlotRequest) -> str:
    return db.get(Clinic, request.clinic_id).organization_id


def as_json(row) -> dict:
    """`row` as the API answers it (its resource schema's dump)."""
    from api.clinics import ClinicSchema
    from api.patients import PatientSchema
    from api.practitioners import PractitionerSchema
    from api.rooms import RoomSchema
    from api.treatment_types import TreatmentTypeSchema

    schema = {
        Clinic: ClinicSchema,
        Room: RoomSchema,
        TreatmentType: TreatmentTypeSchema,
        Practitioner: PractitionerSchema,
        Patient: PatientSchema,
    }[type(row)]
    return schema().dump(row)
