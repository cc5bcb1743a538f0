"""Clinics: their zone, weekly opening hours, closures and device count; archiving one left empty."""

from __future__ import annotations

from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InUse, InvalidInput
from booking.domain.policy import DEFAULT_POLICY, Policy
from booking.domain.weekly import Shift, check_week
from booking.services import devices, policies
from booking.services.changes import load, load_for_change, replace_rows
from booking.services.practitioners import recheck_weeks_at
from booking.services.queries import of_organization
from models import Clinic, Closure, OpeningHours, Practitioner, Room


def create(db: Session, org: str, data: dict, defaults: Policy = DEFAULT_POLICY) -> Clinic:
    """`defaults`: the deployment's policy defaults, under the organization's (booking/domain/policy.py)."""
    clinic = _apply(Clinic(organization_id=org), data)
    policies.set_own(db, org, defaults, clinic, data.get("booking_policy"))
    db.add(clinic)
    db.flush()
    return clinic


def update(
    db: Session, org: str, clinic_id: str, data: dict, expected_version: int | None, defaults: Policy = DEFAULT_POLICY
) -> Clinic:
    """Lists given replace the old ones; a new device count is given to the live bookings at once."""
    clinic = load_for_change(db, org, Clinic, clinic_id, expected_version)
    policies.set_own(db, org, defaults, clinic, data.get("booking_policy"))
    if "device_count" in data and data["device_count"] != clinic.device_count:
        devices.set_device_count(db, clinic, data["device_count"], clock.now())
    clinic = _apply(clinic, data)
    if "timezone" in data:  # the same local hours may now overlap in real time
        recheck_weeks_at(db, org, clinic.id, field="timezone")
    db.flush()
    return clinic


def archive(db: Session, org: str, clinic_id: str, expected_version: int | None) -> None:
    clinic = load_for_change(db, org, Clinic, clinic_id, expected_version)
    check_nothing_left_at(db, org, clinic)
    clinic.archived_at = clock.now()
    db.flush()


def check_nothing_left_at(db: Session, org: str, clinic: Clinic) -> None:
    """A clinic in use (live rooms, or practitioners working there) cannot be archived: 409 naming them."""
    rooms = db.scalars(of_organization(Room, org).where(Room.clinic_id == clinic.id)).all()
    staff = db.scalars(of_organization(Practitioner, org).where(Practitioner.clinics.any(Clinic.id == clinic.id))).all()
    if rooms or staff:
        raise InUse(
            "Archive the clinic's rooms and move its practitioners first.",
            room_ids=[r.id for r in rooms],
            practitioner_ids=[p.id for p in staff],
        )


def add_room(db: Session, org: str, clinic_id: str, data: dict) -> Room:
    clinic = load(db, org, Clinic, clinic_id)
    room = Room(organization_id=org, clinic_id=clinic.id, **data)
    db.add(room)
    db.flush()
    return room


def change_room(db: Session, org: str, room_id: str, data: dict, expected_version: int | None) -> Room:
    room = load_for_change(db, org, Room, room_id, expected_version)
    for field, value in data.items():
        setattr(room, field, value)
    db.flush()
    return room


def archive_room(db: Session, org: str, room_id: str, expected_version: int | None) -> None:
    load_for_change(db, org, Room, room_id, expected_version).archived_at = clock.now()
    db.flush()


def _apply(clinic: Clinic, data: dict) -> Clinic:
    """Set fields, replacing the nested lists wholesale, after checking the week."""
    if "opening_hours" in data:
        zone = data.get("timezone", clinic.timezone)
        try:
            check_week(
                [Shift(h["weekday"], h["start_minute"], h["end_minute"], zone=zone) for h in data["opening_hours"]]
            )
        except InvalidInput as exc:
            raise InvalidInput({"opening_hours": exc.errors}) from exc
        replace_rows(clinic, "opening_hours", OpeningHours, data["opening_hours"])
    if "closures" in data:
        replace_rows(clinic, "closures", Closure, data["closures"])
    for field in ("name", "timezone", "address", "numbing_area_capacity", "device_count"):
        if field in data:
            setattr(clinic, field, data[field])
    return clinic
