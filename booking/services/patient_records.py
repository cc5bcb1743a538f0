"""Patients' records: contact details and contraindications as assessed, with their history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from booking.domain import clock, phones
from booking.services.changes import load_for_change
from booking.services.regions import phone_region
from models import Contraindication, Patient
from models.base import touch


def register(db: Session, org: str, data: dict, *, region: str | None = None) -> Patient:
    """`region`: where a national number is read instead of the organization's one country (a booking
    page's patient writes their number as people do in the country of the clinic they book)."""
    patient = _apply(Patient(organization_id=org), _phone_as_e164(db, org, data, region))
    db.add(patient)
    db.flush()
    return patient


def update(db: Session, org: str, patient_id: str, data: dict, expected_version: int | None) -> Patient:
    patient = _apply(load_for_change(db, org, Patient, patient_id, expected_version), _phone_as_e164(db, org, data))
    db.flush()
    return patient


def _phone_as_e164(db: Session, org: str, data: dict, region: str | None = None) -> dict:
    """The number as the person wrote it, stored as E.164; a national one read in the organization's country."""
    phone = data.get("phone")
    if phone is None:
        return data
    if not phones.needs_region(phone):
        region = None
    elif region is None:
        region = phone_region(db, org)
    return {**data, "phone": phones.to_e164(phone, region)}


class Listed(NamedTuple):
    """A contraindication as the request lists it: its code and, on a temporary one, `until` (the
    first local date on which it no longer applies)."""

    code: str
    until: date | None = None


def record_contraindications(patient: Patient, listed: Sequence[str | Listed], by: str | None, now: datetime) -> None:
    """The history is kept: new codes are recorded at `now`, by `by`; codes no longer listed are
    resolved then, by `by`, not deleted; codes still listed keep their first record. A code listed
    with another `until` than its record's is a new assessment: the record is resolved and a new one
    made. A temporary record past its `until` is history already: left as it is, not resolved."""
    wanted = {entry.code: entry.until for entry in (Listed(e) if isinstance(e, str) else e for e in listed)}
    current = {r.code: r for r in patient.current_contraindications(now.date())}
    for code, record in current.items():
        if code not in wanted or wanted[code] != record.until:
            record.resolved_at, record.resolved_by = now, by
            touch(patient)  # only the record's row changes, and the patient's active set with it
    for code, until in wanted.items():
        if code not in current or current[code].until != until:
            patient.contraindication_records.append(
                Contraindication(code=code, until=until, recorded_at=now, recorded_by=by)
            )


def _apply(patient: Patient, data: dict) -> Patient:
    if "contraindications" in data:
        record_contraindications(patient, data["contraindications"], data.get("assessed_by"), clock.now())
    for field in ("name", "email", "phone", "date_of_birth", "language"):
        if field in data:
            setattr(patient, field, data[field])
    return patient
