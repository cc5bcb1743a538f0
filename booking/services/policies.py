"""Loading the effective booking policy of a clinic and treatment type, and the facts its checks need."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import policy
from booking.domain.errors import InvalidInput
from booking.domain.policy import Actor, Policy
from booking.domain.weekly import local_instant
from models import LIVE_STATUSES, Appointment, Clinic, Hold, Organization, Practitioner, TreatmentType


def resolve(
    db: Session, org: str, defaults: Policy, clinic: Clinic | None, treatment_type: TreatmentType | None
) -> Policy:
    organization = db.get_one(Organization, org)
    return policy.effective(
        defaults,
        organization.booking_policy,
        clinic.booking_policy if clinic is not None else None,
        treatment_type.booking_policy if treatment_type is not None else None,
    )


def set_own(owner: Organization | Clinic | TreatmentType, changes: dict, effective_after: Policy) -> None:
    """Apply a PATCH of `booking_policy` to the object's own fields, refusing an unusable result."""
    problems = policy.inconsistency(effective_after)
    if problems:
        raise InvalidInput({"booking_policy": problems})
    owner.booking_policy = policy.merged(owner.booking_policy, changes) or None


def sessions_that_day(
    db: Session,
    practitioner_id: str,
    start: datetime,
    zone: ZoneInfo,
    now: datetime,
    *,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> tuple[date, int]:
    """The clinic's local date of `start` and the practitioner's booked sessions and live holds that day."""
    day = start.astimezone(zone).date()
    first, last = local_instant(day, 0, zone), local_instant(day + timedelta(days=1), 0, zone)
    booked = db.scalar(
        sa.select(sa.func.count(Appointment.id)).where(
            Appointment.practitioner_id == practitioner_id,
            Appointment.status.in_(LIVE_STATUSES),
            Appointment.starts_at >= first,
            Appointment.starts_at < last,
            *([Appointment.id != exclude_appointment] if exclude_appointment else []),
        )
    )
    held = db.scalar(
        sa.select(sa.func.count(Hold.id)).where(
            Hold.practitioner_id == practitioner_id,
            Hold.live(now),
            Hold.starts_at >= first,
            Hold.starts_at < last,
            *([Hold.id != exclude_hold] if exclude_hold else []),
        )
    )
    return day, (booked or 0) + (held or 0)


def check(
    db: Session,
    org: str,
    actor: Actor | None,
    clinic: Clinic,
    treatment_type: TreatmentType,
    practitioner: Practitioner,
    start: datetime,
    now: datetime,
    *,
    asked_at: datetime | None = None,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> None:
    """Every field of the effective policy that binds `actor` (booking/domain/policy.py).

    Notice, same-day and horizon count from `asked_at` (when a hold promised the slot) or `now`."""
    if actor is None or not actor.bound:
        return
    effective = resolve(db, org, actor.defaults, clinic, treatment_type)
    zone = ZoneInfo(clinic.timezone)
    if actor.frontend:
        policy.check_online(effective, practitioner.bookable_online)
    policy.check_start(effective, start, asked_at or now, zone)
    if effective.max_sessions_per_practitioner_per_day is not None:
        day, count = sessions_that_day(
            db, practitioner.id, start, zone, now, exclude_appointment=exclude_appointment, exclude_hold=exclude_hold
        )
        policy.check_daily_limit(effective, count, day)


def check_cutoff(db: Session, org: str, actor: Actor | None, item: Appointment, now: datetime) -> None:
    """A frontend cancelling or moving `item` inside the cut-off is refused."""
    if actor is None or not actor.frontend:
        return
    clinic = db.get_one(Clinic, item.clinic_id)
    effective = resolve(db, org, actor.defaults, clinic, db.get_one(TreatmentType, item.treatment_type_id))
    policy.check_cutoff(effective, item.starts_at, now)
