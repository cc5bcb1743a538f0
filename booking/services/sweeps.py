"""The timed sweeps besides follow-up proposals: hold and course plan expiry, reminders, aftercare.

Each finds what is due from the database alone and records it so that finding it
again changes nothing: an expired hold gets an outcome, a reminder an outbox key.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain.rules import SESSION_KIND
from booking.services import events
from booking.services.appointments import expire_hold
from booking.services.course_plans import expire_plan
from models import Appointment, CoursePlan, Hold, OutboxEvent, TreatmentType


def expired_holds(db: Session, now: datetime, limit: int = 200) -> list[str]:
    return list(db.scalars(sa.select(Hold.id).where(Hold.lapsed(now)).order_by(Hold.expires_at).limit(limit)))


def expire(db: Session, hold_ids: list[str], now: datetime) -> int:
    """Release these holds if they are still live and past their time (locked, so a booking
    from the same hold waits and then finds it expired)."""
    holds = db.scalars(sa.select(Hold).where(Hold.id.in_(hold_ids)).order_by(Hold.id).with_for_update(of=Hold))
    return sum(expire_hold(db, hold, now) for hold in holds)


def expired_plans(db: Session, now: datetime, limit: int = 200) -> list[str]:
    query = sa.select(CoursePlan.id).where(CoursePlan.status == "held", CoursePlan.expires_at <= now)
    return list(db.scalars(query.order_by(CoursePlan.expires_at).limit(limit)))


def expire_plans(db: Session, plan_ids: list[str], now: datetime) -> int:
    """Mark these course plans expired if they are still held and past their time, releasing their
    holds; how many holds it released. Each plan is locked before its holds, as confirming and
    releasing lock them, so the sweep never waits on a confirm that waits on it."""
    plans = db.scalars(
        sa.select(CoursePlan)
        .where(CoursePlan.id.in_(plan_ids))
        .order_by(CoursePlan.id)
        .with_for_update(of=CoursePlan)
        .execution_options(populate_existing=True)
    )
    return sum(expire_plan(db, record, now) for record in plans)  # each: its holds released


def send_reminders(db: Session, now: datetime, offsets: list[timedelta]) -> int:
    """One `appointment.reminder` per booked appointment and offset, once it is due.

    An appointment booked after a reminder's moment does not get that reminder (the
    booking itself told the patient); one still before it gets it even if the
    scheduler was down at the moment, as long as the start is still ahead.
    """
    if not offsets:
        return 0
    due = db.scalars(
        sa.select(Appointment).where(
            Appointment.status == "booked", Appointment.starts_at > now, Appointment.starts_at <= now + max(offsets)
        )
    )
    sent = 0
    for appointment in due:
        for offset in offsets:
            moment = appointment.starts_at - offset
            if not (appointment.created_at <= moment <= now):
                continue
            label = events.offset_label(offset)
            payload = {
                "appointment": events.appointment_payload(appointment),
                "before": label,
                **events.instructions(db, appointment, events.PRE_CARE),
            }
            sent += events.add_once(
                db,
                appointment.organization_id,
                "appointment.reminder",
                f"reminder:{appointment.id}:{label}",
                appointment.id,
                payload,
            )
    return sent


def send_aftercare(db: Session, now: datetime, lookback: timedelta = timedelta(days=2)) -> int:
    """One `appointment.aftercare` per completed session (completed in the last `lookback`)."""
    sent_keys = sa.select(OutboxEvent.id).where(OutboxEvent.dedupe_key == sa.literal("aftercare:") + Appointment.id)
    due = db.scalars(
        sa.select(Appointment)
        .join(TreatmentType, TreatmentType.id == Appointment.treatment_type_id)
        .where(
            Appointment.status == "completed",
            Appointment.completed_at >= now - lookback,
            Appointment.completed_at <= now,
            TreatmentType.kind == SESSION_KIND,
            ~sent_keys.exists(),
        )
    )
    sent = 0
    for appointment in due:
        payload = {
            "appointment": events.appointment_payload(appointment),
            **events.instructions(db, appointment, events.AFTERCARE),
        }
        sent += events.add_once(
            db,
            appointment.organization_id,
            "appointment.aftercare",
            f"aftercare:{appointment.id}",
            appointment.id,
            payload,
        )
    return sent
