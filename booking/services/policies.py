"""Loading the effective booking policy of a clinic and treatment type, and the facts its checks need."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import policy
from booking.domain.errors import InvalidInput
from booking.domain.policy import Actor, Policy
from booking.domain.weekly import local_instant
from booking.services.availability_cache import ClinicFacts, TreatmentFacts
from models import LIVE_STATUSES, Appointment, Clinic, Hold, Organization, Practitioner, TreatmentType


def resolve(
    db: Session,
    org: str,
    defaults: Policy,
    clinic: Clinic | ClinicFacts | None,
    treatment_type: TreatmentType | TreatmentFacts | None,
) -> Policy:
    organization = db.get_one(Organization, org)
    return policy.effective(
        defaults,
        organization.booking_policy,
        clinic.booking_policy if clinic is not None else None,
        treatment_type.booking_policy if treatment_type is not None else None,
    )


def set_own(
    db: Session, org: str, defaults: Policy, owner: Organization | Clinic | TreatmentType, changes: dict | None
) -> None:
    """Apply a PATCH of `booking_policy` to the object's own fields: a value sets one, null clears
    it; a value equal to the effective one leaves the field as it is (so a client writing back what
    it read changes nothing). An unusable result (a hold longer than its maximum) is a 422."""
    if changes is None:
        return
    clinic = owner if isinstance(owner, Clinic) else None
    treatment_type = owner if isinstance(owner, TreatmentType) else None
    before = resolve(db, org, defaults, clinic, treatment_type)
    changes = {k: v for k, v in changes.items() if v is None or getattr(before, k) != v}
    own = policy.merged(owner.booking_policy, changes) or None
    if own == (owner.booking_policy or None):
        return
    previous, owner.booking_policy = owner.booking_policy, own
    after = (
        policy.effective(defaults, own)
        if isinstance(owner, Organization)
        else policy.effective(defaults, db.get_one(Organization, org).booking_policy, own)
    )
    problems = policy.inconsistency(after)
    if problems:
        owner.booking_policy = previous
        raise InvalidInput({"booking_policy": problems})


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


def capped_days(
    db: Session, cap: int, start: datetime, end: datetime, zone: ZoneInfo, now: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per practitioner, the clinic's local days in [start, end) on which their booked sessions and
    live holds already reach `cap`, each as [midnight, next midnight)."""
    first = local_instant(start.astimezone(zone).date(), 0, zone)
    last = local_instant(end.astimezone(zone).date() + timedelta(days=1), 0, zone)
    rows = db.execute(
        sa.union_all(
            sa.select(Appointment.practitioner_id, Appointment.starts_at).where(
                Appointment.status.in_(LIVE_STATUSES), Appointment.starts_at >= first, Appointment.starts_at < last
            ),
            sa.select(Hold.practitioner_id, Hold.starts_at).where(
                Hold.live(now), Hold.starts_at >= first, Hold.starts_at < last
            ),
        )
    ).all()
    counts: dict[tuple[str, date], int] = {}
    for practitioner_id, starts_at in rows:
        if starts_at.tzinfo is None:  # a union's rows skip the column type's conversion on SQLite
            starts_at = starts_at.replace(tzinfo=UTC)
        key = (practitioner_id, starts_at.astimezone(zone).date())
        counts[key] = counts.get(key, 0) + 1
    capped: dict[str, list[tuple[datetime, datetime]]] = {}
    for (practitioner_id, day), count in sorted(counts.items()):
        if count >= cap:
            span = (local_instant(day, 0, zone), local_instant(day + timedelta(days=1), 0, zone))
            capped.setdefault(practitioner_id, []).append(span)
    return capped
