"""The front desk's day sheet: every visit at a clinic on one of its local dates, with its phases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain.calendar_days import first_instant
from booking.domain.timing import Instants, Phase, Timing, phases
from booking.services.changes import load
from models import Appointment, Clinic, Patient, Practitioner, Room, TreatmentType

# What is on the sheet: what is still coming or happened; a cancelled one has freed its time.
ON_THE_SHEET = ("booked", "checked_in", "completed", "no_show")


@dataclass(frozen=True)
class Visit:
    appointment: Appointment
    patient: Patient
    practitioner: Practitioner
    room: Room
    treatment_type: TreatmentType
    phases: list[Phase]


@dataclass(frozen=True)
class DaySheet:
    clinic: Clinic
    date: date
    starts_at: datetime  # the date's first instant in the clinic's zone
    ends_at: datetime  # the next date's: 23 or 25 hours later on a DST change
    visits: list[Visit]


def day_sheet(db: Session, org: str, clinic_id: str, day: date) -> DaySheet:
    """Visits starting on `day` in the clinic's zone, by start, then practitioner."""
    clinic = load(db, org, Clinic, clinic_id, what="clinic")
    start, end = first_instant(day, clinic.timezone), first_instant(day + timedelta(days=1), clinic.timezone)
    rows = db.execute(
        sa.select(Appointment, Patient, Practitioner, Room, TreatmentType)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Practitioner, Practitioner.id == Appointment.practitioner_id)
        .join(Room, Room.id == Appointment.room_id)
        .join(TreatmentType, TreatmentType.id == Appointment.treatment_type_id)
        .where(
            Appointment.organization_id == org,
            Appointment.clinic_id == clinic.id,
            Appointment.status.in_(ON_THE_SHEET),
            Appointment.starts_at >= start,
            Appointment.starts_at < end,
        )
        .order_by(Appointment.starts_at, Practitioner.name, Appointment.id)
    ).all()
    numbing_area = clinic.numbing_area_capacity > 0
    visits = [
        Visit(
            appointment,
            patient,
            practitioner,
            room,
            treatment_type,
            phases(
                Timing.of(treatment_type),
                Instants(appointment.starts_at, appointment.procedure_starts_at, appointment.ends_at),
                numbing_area=numbing_area,
            ),
        )
        for appointment, patient, practitioner, room, treatment_type in rows
    ]
    return DaySheet(clinic, day, start, end, visits)
