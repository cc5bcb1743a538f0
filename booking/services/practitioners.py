"""Practitioners: the clinics they work at, what they are qualified for, their week and time off."""

from __future__ import annotations

from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput, NotFound
from booking.domain.weekly import Shift, check_hours_at_own_clinics, check_no_stranded_hours, check_week
from booking.services.changes import check_version, load, load_for_change, replace_rows
from booking.services.queries import of_organization
from models import Clinic, Practitioner, TimeOff, TreatmentType, WorkingHours


def create(db: Session, org: str, data: dict) -> Practitioner:
    practitioner = _apply(db, org, Practitioner(organization_id=org), data)
    db.add(practitioner)
    db.flush()
    return practitioner


def update(db: Session, org: str, practitioner_id: str, data: dict, expected_version: int | None) -> Practitioner:
    practitioner = _apply(db, org, load_for_change(db, org, Practitioner, practitioner_id, expected_version), data)
    db.flush()
    return practitioner


def archive(db: Session, org: str, practitioner_id: str, expected_version: int | None) -> None:
    load_for_change(db, org, Practitioner, practitioner_id, expected_version).archived_at = clock.now()
    db.flush()


def replace_week(db: Session, org: str, practitioner_id: str, entries: list[dict]) -> list[WorkingHours]:
    """Times are local to each clinic; no two shifts may overlap in real time, across zones too."""
    practitioner = load(db, org, Practitioner, practitioner_id)
    zones = {c.id: c.timezone for c in practitioner.clinics}
    check_hours_at_own_clinics([e["clinic_id"] for e in entries], set(zones))
    check_week(_shifts([WorkingHours(**e) for e in entries], zones))
    replace_rows(practitioner, "working_hours", WorkingHours, entries)  # a new week: a new version
    db.flush()
    return practitioner.working_hours


def recheck_weeks_at(db: Session, org: str, clinic_id: str, field: str) -> None:
    """Re-check the weeks of everyone at a clinic (after its time zone changed)."""
    db.flush()
    for practitioner in db.scalars(
        of_organization(Practitioner, org).where(Practitioner.clinics.any(Clinic.id == clinic_id))
    ):
        zones = {c.id: c.timezone for c in practitioner.clinics}
        try:
            check_week(_shifts(practitioner.working_hours, zones))
        except InvalidInput as exc:
            raise InvalidInput(
                {field: [f"Practitioner {practitioner.id}'s hours would overlap: {exc.errors}"]}
            ) from exc


def add_time_off(db: Session, org: str, practitioner_id: str, data: dict) -> tuple[Practitioner, TimeOff]:
    practitioner = load(db, org, Practitioner, practitioner_id)
    time_off = TimeOff(organization_id=org, practitioner_id=practitioner.id, **data)
    db.add(time_off)
    db.flush()
    return practitioner, time_off


def time_off(
    db: Session, org: str, practitioner_id: str, time_off_id: str, *, lock: bool = False
) -> tuple[Practitioner, TimeOff]:
    practitioner = load(db, org, Practitioner, practitioner_id)
    found = load(db, org, TimeOff, time_off_id, what="time off", lock=lock)
    if found.practitioner_id != practitioner.id:
        raise NotFound(f"No time off with id '{time_off_id}'.")
    return practitioner, found


def remove_time_off(
    db: Session, org: str, practitioner_id: str, time_off_id: str, expected_version: int | None
) -> None:
    _, found = time_off(db, org, practitioner_id, time_off_id, lock=True)
    check_version(found, expected_version)
    db.delete(found)
    db.flush()


def _apply(db: Session, org: str, practitioner: Practitioner, data: dict) -> Practitioner:
    if "clinic_ids" in data:
        clinics = _load_all(db, org, Clinic, data["clinic_ids"], "clinic_ids")
        check_no_stranded_hours({h.clinic_id for h in practitioner.working_hours}, {c.id for c in clinics})
        practitioner.clinics = clinics
    if "treatment_type_ids" in data:
        practitioner.treatment_types = _load_all(
            db, org, TreatmentType, data["treatment_type_ids"], "treatment_type_ids"
        )
    for field in ("name", "email", "bookable_online"):
        if field in data:
            setattr(practitioner, field, data[field])
    return practitioner


def _load_all(db: Session, org: str, model, ids: list[str], field: str) -> list:
    """The organization's objects for `ids`, or a 422 naming those that do not exist."""
    ids = list(dict.fromkeys(ids))
    found = {o.id: o for o in db.scalars(of_organization(model, org).where(model.id.in_(ids)))} if ids else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput({field: [f"Unknown id: {', '.join(missing)}."]})
    return [found[i] for i in ids]


def _shifts(entries, zones: dict[str, str]) -> list[Shift]:
    return [Shift(e.weekday, e.start_minute, e.end_minute, e.clinic_id, zones[e.clinic_id]) for e in entries]
