"""The availability service: loads a window's data with indexed range queries and
hands it to the pure engine in booking.availability."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from models import Appointment, Claim, Clinic, Patient, Practitioner, Room, TimeOff, TreatmentType

from . import clock, patients
from .context import CLAIM_REACH
from .availability import PractitionerHours, Result, Search, Slot, find_slots
from .calendar import open_time
from .errors import DomainError, InvalidInput
from .timing import Timing
from .weekly import Shift



@dataclass(frozen=True)
class Settings:
    grid_minutes: int = 15
    min_notice: timedelta = timedelta(hours=2)
    horizon: timedelta = timedelta(days=90)
    max_window: timedelta = timedelta(days=31)


@dataclass(frozen=True)
class Query:
    treatment_type_id: str
    start: datetime
    end: datetime
    clinic_id: str | None = None
    practitioner_id: str | None = None
    room_id: str | None = None
    patient_id: str | None = None
    limit: int = 50
    order: str = "earliest"


def search(db: Session, org: str, query: Query, settings: Settings = Settings()) -> tuple[list[Slot], DomainError | None, dict]:
    """(slots, why the patient's rules ruled the window out, {clinic_id: clinic})."""
    if query.end <= query.start:
        raise InvalidInput({"end": ["Must be after start."]})
    if query.end - query.start > settings.max_window:
        raise InvalidInput({"end": [f"A window spans at most {settings.max_window.days} days."]})
    now = clock.now()
    start, end = max(query.start, now + settings.min_notice), min(query.end, now + settings.horizon)
    treatment_type = _one(db, org, TreatmentType, query.treatment_type_id, "treatment_type_id")
    clinics = _clinics(db, org, query)
    if query.practitioner_id:
        _one(db, org, Practitioner, query.practitioner_id, "practitioner_id")
    if query.room_id:
        _one(db, org, Room, query.room_id, "room_id")
    allows, previous_practitioner = None, None
    if query.patient_id:
        patient = _one(db, org, Patient, query.patient_id, "patient_id")
        try:
            course = patients.resolve_course(db, None, patient.id, treatment_type)
        except DomainError as refusal:
            return [], refusal, clinics
        allows = partial(patients.check_patient, patients.load_facts(db, patient, treatment_type, course, now))
        previous_practitioner = db.scalar(
            sa.select(Appointment.practitioner_id).where(Appointment.patient_id == patient.id,
                                                         Appointment.status == "completed")
            .order_by(Appointment.starts_at.desc()).limit(1))
    if start >= end:
        return [], None, clinics
    found, refusal = [], None
    for clinic in clinics.values():
        result: Result = find_slots(_build(db, clinic, treatment_type, query, start, end, now, settings,
                                           allows, previous_practitioner))
        found += result.slots
        refusal = refusal or result.refusal
    order = _evening_key(clinics) if query.order == "evening" else (lambda slot: slot.starts_at)
    found = sorted(found, key=order)[: query.limit]
    return found, (None if found else refusal), clinics


def _one(db, org, model, object_id, field):
    found = db.scalar(sa.select(model).where(model.id == object_id, model.organization_id == org))
    if found is None or getattr(found, "archived_at", None) is not None:
        raise InvalidInput({field: [f"Unknown id '{object_id}'."]})
    return found


def _clinics(db, org, query: Query) -> dict[str, Clinic]:
    if query.clinic_id:
        return {query.clinic_id: _one(db, org, Clinic, query.clinic_id, "clinic_id")}
    rows = db.scalars(sa.select(Clinic).where(Clinic.organization_id == org, Clinic.archived_at.is_(None))
                      .order_by(Clinic.id))
    return {c.id: c for c in rows}


def _evening_key(clinics):
    def key(slot: Slot):
        local = slot.starts_at.astimezone(ZoneInfo(clinics[slot.clinic_id].timezone))
        return (-(local.hour * 60 + local.minute), slot.starts_at)
    return key


def _build(db, clinic, treatment_type, query, start, end, now, settings, allows, previous) -> Search:
    reach = (start - CLAIM_REACH, end + CLAIM_REACH)
    staff = db.scalars(sa.select(Practitioner).where(
        Practitioner.organization_id == clinic.organization_id, Practitioner.archived_at.is_(None),
        Practitioner.clinics.any(Clinic.id == clinic.id),
        Practitioner.treatment_types.any(TreatmentType.id == treatment_type.id),
        *([Practitioner.id == query.practitioner_id] if query.practitioner_id else []),
    ).order_by(Practitioner.id).options(selectinload(Practitioner.working_hours))).all()  # one query, not one each
    rooms = [r for r in db.scalars(sa.select(Room).where(
        Room.clinic_id == clinic.id, Room.archived_at.is_(None),
        *([Room.id == query.room_id] if query.room_id else [])).order_by(Room.id))
        if not treatment_type.required_capability or treatment_type.required_capability in r.capabilities]
    resources = [f"practitioner:{p.id}" for p in staff] + [f"room:{r.id}" for r in rooms]
    # Pool units ('numbing:<clinic>#2'): a prefix match with '_' (in every id) escaped, so that
    # PostgreSQL turns it into a range on ix_claims_resource_starts (pattern ops) instead of a scan.
    pools = [f"numbing:{clinic.id}#", f"device:{clinic.id}#"]
    if query.patient_id:
        resources.append(f"patient:{query.patient_id}")
    claims = db.execute(sa.select(Claim.resource, Claim.starts_at, Claim.ends_at).where(
        sa.or_(Claim.resource.in_(resources), *(Claim.resource.startswith(p, autoescape=True) for p in pools)),
        Claim.starts_at >= reach[0], Claim.starts_at < reach[1], Claim.ends_at > reach[0],
        sa.or_(Claim.expires_at.is_(None), Claim.expires_at > now))).all()
    busy: dict[str, list] = {}
    for resource, claim_start, claim_end in claims:
        busy.setdefault(resource, []).append((claim_start, claim_end))
    time_off: dict[str, list] = {}
    for practitioner_id, off_start, off_end in db.execute(sa.select(
            TimeOff.practitioner_id, TimeOff.starts_at, TimeOff.ends_at).where(
            TimeOff.practitioner_id.in_([p.id for p in staff]), TimeOff.starts_at < reach[1],
            TimeOff.ends_at > reach[0])):
        time_off.setdefault(practitioner_id, []).append((off_start, off_end))
    opening = [Shift(h.weekday, h.start_minute, h.end_minute, zone=clinic.timezone) for h in clinic.opening_hours]
    closures = [(c.start_date, c.end_date) for c in clinic.closures]
    hours = [PractitionerHours(p.id, open_time(
        opening=opening, closures=closures, time_off=time_off.get(p.id, []), zone=clinic.timezone,
        working=[Shift(h.weekday, h.start_minute, h.end_minute, zone=clinic.timezone)
                 for h in p.working_hours if h.clinic_id == clinic.id],
        start=start, end=end + CLAIM_REACH)) for p in staff]
    hours.sort(key=_preference(previous, busy))
    return Search(
        clinic_id=clinic.id, zone=clinic.timezone, treatment_type_id=treatment_type.id,
        timing=Timing.of(treatment_type), start=start, end=end, practitioners=hours,
        rooms=[r.id for r in rooms], busy=busy, numbing_seats=clinic.numbing_area_capacity,
        devices=clinic.device_count, patient_id=query.patient_id, patient_allows=allows,
        step_minutes=settings.grid_minutes, order=query.order, limit=query.limit,
    )


def _preference(previous: str | None, busy: dict):
    """Continuity of care first (the patient's last practitioner), then the least loaded."""
    def key(hours: PractitionerHours):
        load = sum(((e - s).total_seconds() for s, e in busy.get(f"practitioner:{hours.practitioner_id}", [])), 0.0)
        return (hours.practitioner_id != previous, load, hours.practitioner_id)
    return key
