"""Domain events, written to the outbox in the transaction of the change that causes them.

Each occurrence has a key (`appointment.created:<id>`, `reminder:<id>:48h`) that the
outbox keeps unique, so a sweep run twice, or by two schedulers, records it once.
Payloads are plain JSON: instants in the clinic's zone, as the API shows them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.weekly import format_hhmm
from booking.i18n import N_, Text
from models import Appointment, FollowUp, Hold, OutboxEvent, Patient, WaitlistEntry

EVENT_TYPES = (
    "appointment.created",
    "appointment.rescheduled",
    "appointment.cancelled",
    "appointment.checked_in",
    "appointment.completed",
    "appointment.no_show",
    "appointment.reminder",
    "appointment.aftercare",
    "hold.expired",
    "follow_up.proposed",
    "follow_up.no_slot",
    "course_plan.held",
    "course_plan.confirmed",
    "course_plan.released",  # by DELETE, or its holds ran out (the plan's `status` is then `expired`)
    "waitlist.offered",
    "waitlist.fulfilled",
    "waitlist.expired",
    "webhook.test",  # sent to one subscription on request (POST /v1/webhooks/{id}/test), never fanned out
    "webhook.disabled",  # a subscription of the organization was disabled: why and since when
)

# Rule 10 of docs/rules.md: what the patient is told before and after a session (sources 000, 003).
# Message ids of the catalogs (booking/i18n): each patient reads them in their language.
PRE_CARE = (
    N_("Come with clean, dry skin and no makeup."),
    N_("Avoid anything that makes you sweat before the session."),
)
AFTERCARE = (
    N_("For a few days avoid direct sun, vigorous exercise, alcohol and harsh cleansers."),
    N_("Apply a gentle moisturizer and sunscreen."),
)


def instructions(db: Session, appointment: Appointment, messages: tuple[str, ...]) -> dict:
    """Rule 10's instructions in the patient's `language` (English where it has no catalog), with
    the language and its text direction, for whoever sends them on (a booking frontend)."""
    text = Text.of(db.scalar(sa.select(Patient.language).where(Patient.id == appointment.patient_id)))
    return {"instructions": text.all(messages), "language": text.language, "direction": text.direction}


def add(db: Session, organization_id: str, type_: str, key: str, subject_id: str, payload: dict) -> None:
    """Add an event that cannot have happened before (a state change the caller just made)."""
    db.add(
        OutboxEvent(
            organization_id=organization_id,
            type=type_,
            dedupe_key=key,
            subject_id=subject_id,
            payload=payload,
            occurred_at=clock.now(),
        )
    )


def add_once(db: Session, organization_id: str, type_: str, key: str, subject_id: str, payload: dict) -> bool:
    """Add the event unless its key is already recorded; False when it was.

    For sweeps, which may find the same due reminder twice (or race another
    scheduler): the insert runs in a savepoint, so a duplicate key costs only this
    event, never the caller's transaction.
    """
    if db.scalar(sa.select(OutboxEvent.id).where(OutboxEvent.dedupe_key == key)) is not None:
        return False
    try:
        with db.begin_nested():
            add(db, organization_id, type_, key, subject_id, payload)
    except IntegrityError:
        return False
    return True


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    return clock.shown_in(value, zone).isoformat() if value is not None else None


def _slot(item: Appointment | Hold) -> dict:
    zone = ZoneInfo(item.clinic.timezone)
    return {
        "id": item.id,
        "clinic_id": item.clinic_id,
        "practitioner_id": item.practitioner_id,
        "room_id": item.room_id,
        "treatment_type_id": item.treatment_type_id,
        "patient_id": item.patient_id,
        "course_id": item.course_id,
        "area": item.area,
        "starts_at": _local(item.starts_at, zone),
        "procedure_starts_at": _local(item.procedure_starts_at, zone),
        "ends_at": _local(item.ends_at, zone),
        "override": (
            {"key_id": item.override_key_id, "reason": item.override_reason} if item.override_key_id else None
        ),
    }


def appointment_payload(appointment: Appointment) -> dict:
    return {
        **_slot(appointment),
        "status": appointment.status,
        "rescheduled_from": appointment.rescheduled_from,
        "rescheduled_to": appointment.rescheduled_to,
        "hold_id": appointment.hold_id,
        "cancel_reason": appointment.cancel_reason,
        # Who did what: {"key_id", "channel"} of the API key, or null (no key acted, or before 0014).
        "created_by": appointment.created_by,
        "rescheduled_by": appointment.rescheduled_by,
        "reschedule_reason": appointment.reschedule_reason,
        "cancelled_by": appointment.cancelled_by,
    }


def hold_payload(hold: Hold) -> dict:
    return {**_slot(hold), "source": hold.source, "expires_at": _local(hold.expires_at, ZoneInfo(hold.clinic.timezone))}


def appointment_changed(
    db: Session, appointment: Appointment, type_: str, *, previous: Appointment | None = None
) -> None:
    """appointment.created, .cancelled, .completed ...: one per appointment and type.

    A reschedule is one event, on the new appointment; `previous` is the one it replaced (now
    cancelled, with who moved it, why, and its `rescheduled_to`), carried as `previous`."""
    payload: dict = {"appointment": appointment_payload(appointment)}
    token = getattr(appointment, "manage_token", None)
    if token is not None:  # the new appointment's manage link, for whoever mails the patient
        payload["manage_token"] = token
    if previous is not None:
        payload["previous"] = appointment_payload(previous)
    add(db, appointment.organization_id, type_, f"{type_}:{appointment.id}", appointment.id, payload)


def follow_up_payload(follow_up: FollowUp) -> dict:
    zone = ZoneInfo(follow_up.clinic.timezone)
    return {
        "id": follow_up.id,
        "status": follow_up.status,
        "appointment_id": follow_up.appointment_id,
        "patient_id": follow_up.patient_id,
        "clinic_id": follow_up.clinic_id,
        "course_id": follow_up.course_id,
        "window_starts_at": _local(follow_up.window_starts_at, zone),
        "window_ends_at": _local(follow_up.window_ends_at, zone),
        "hold": hold_payload(follow_up.hold) if follow_up.hold is not None else None,
        "reason": (
            {"code": follow_up.reason_code, "detail": follow_up.reason_detail} if follow_up.reason_code else None
        ),
    }


def waitlist_payload(entry: WaitlistEntry) -> dict:
    """A waitlist entry as the API shows it (instants in the entry's zone), without its offers."""
    zone = ZoneInfo(entry.timezone)
    return {
        "id": entry.id,
        "status": entry.status,
        "patient_id": entry.patient_id,
        "treatment_type_id": entry.treatment_type_id,
        "clinic_ids": list(entry.clinic_ids),
        "practitioner_id": entry.practitioner_id,
        "course_id": entry.course_id,
        "start": _local(entry.window_starts_at, zone),
        "end": _local(entry.window_ends_at, zone),
        "weekdays": list(entry.weekdays),
        "time_from": _hhmm(entry.time_from),
        "time_to": _hhmm(entry.time_to),
        "appointment_id": entry.appointment_id,
        "joined_at": _local(entry.created_at, zone),
    }


def _hhmm(minutes: int | None) -> str | None:
    return None if minutes is None else format_hhmm(minutes)


def offset_label(offset: timedelta) -> str:
    """48h, 2h, 90m: the reminder's name in its key and payload."""
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
