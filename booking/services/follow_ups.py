"""Follow-up proposals: after a completed session, hold the next one in the recommended window.

Rules: "Follow-up slots and holds" in docs/rules.md. The same practitioner where
possible, else another qualified one at the clinic; a time of day close to the last
session's; a hold that lapses 7 days after it is made and never later than 48 hours
before the slot. Nothing free: a `no_slot` proposal, so the clinic can act. A temporary
contraindication active when the window opens moves the window to start at its end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.availability import Slot
from booking.domain.calendar_days import Dated, first_instant_after
from booking.domain.errors import Contraindicated, DomainError, InvalidInput
from booking.domain.rules import SESSION_KIND, check_contraindications
from booking.services import events
from booking.services.appointments import SlotRequest, place_hold
from booking.services.availability_search import Query, Settings, search
from models import LIVE_STATUSES, Appointment, Contraindication, Course, FollowUp, Hold, TreatmentType

# When a treatment type leaves the window unset: rule 5, 28-42 days.
DEFAULT_WINDOW_DAYS = (28, 42)
# A slot taken between the search and the hold (a concurrent booking): try the next best.
ATTEMPTS = 3
# A follow-up's reason codes of its own, beside the problem codes of the rule or refusal behind it.
NO_SLOT, ALREADY_BOOKED = "no_slot", "already_booked"


@dataclass(frozen=True)
class FollowUpSettings:
    hold_for: timedelta = timedelta(days=7)  # the patient has this long to confirm
    release_before: timedelta = timedelta(hours=48)  # ... and never less than this before the slot
    lookback: timedelta = timedelta(days=30)  # sessions completed longer ago are not proposed for
    search: Settings = field(default_factory=Settings)


def candidates(db: Session, now: datetime, settings: FollowUpSettings, limit: int = 100) -> list[str]:
    """Completed sessions, newest first, that have no proposal yet."""
    proposed = sa.select(FollowUp.id).where(FollowUp.appointment_id == Appointment.id)
    return list(
        db.scalars(
            sa.select(Appointment.id)
            .join(TreatmentType, TreatmentType.id == Appointment.treatment_type_id)
            .where(
                Appointment.status == "completed",
                Appointment.completed_at >= now - settings.lookback,
                TreatmentType.kind == SESSION_KIND,
                ~proposed.exists(),
            )
            .order_by(Appointment.completed_at.desc())
            .limit(limit)
        )
    )


def propose(db: Session, appointment_id: str, settings: FollowUpSettings = FollowUpSettings()) -> FollowUp | None:
    """The proposal for one completed session, made at most once (the caller commits)."""
    now = clock.now()
    session = db.get(Appointment, appointment_id)
    if session is None or session.status != "completed":
        return None
    if db.scalar(sa.select(FollowUp.id).where(FollowUp.appointment_id == session.id)) is not None:
        return None
    course = db.get(Course, session.course_id) if session.course_id else None
    treatment_type = db.get_one(TreatmentType, session.treatment_type_id)
    low, high = (
        treatment_type.min_interval_days or DEFAULT_WINDOW_DAYS[0],
        max(
            treatment_type.recommended_interval_days or DEFAULT_WINDOW_DAYS[1],
            treatment_type.min_interval_days or DEFAULT_WINDOW_DAYS[0],
        ),
    )
    follow_up = FollowUp(
        organization_id=session.organization_id,
        appointment_id=session.id,
        patient_id=session.patient_id,
        clinic_id=session.clinic_id,
        treatment_type_id=session.treatment_type_id,
        course_id=session.course_id,
        status="no_slot",
        **_after_temporary_contraindications(db, session, _window(session, low, high), high - low + 1),
    )
    db.add(follow_up)
    # The unique appointment_id: a second scheduler doing the same waits here, then fails and rolls back.
    db.flush()
    # Recorded, not skipped, so the sweep does not look at the session again and the clinic sees why.
    if course is not None and course.status != "active":
        return _not_needed(follow_up, "course_complete", f"The course is {course.status}: no further session.")
    if _next_session_exists(db, session, now):
        return _not_needed(follow_up, ALREADY_BOOKED, "The patient already has a later session.")
    hold, refusal = _hold_best(db, session, follow_up, now, settings)
    if hold is not None:
        follow_up.status, follow_up.hold_id = "proposed", hold.id
        follow_up.hold = hold
    else:
        follow_up.reason_code = refusal.code if refusal else NO_SLOT
        follow_up.reason_detail = (
            refusal.detail if refusal else "No practitioner and room are free in the recommended window."
        )[:500]
    kind = "follow_up.proposed" if hold is not None else "follow_up.no_slot"
    events.add(
        db,
        follow_up.organization_id,
        kind,
        f"follow_up:{session.id}",
        follow_up.id,
        {"follow_up": events.follow_up_payload(follow_up)},
    )
    return follow_up


def _window(session: Appointment, low: int, high: int) -> dict[str, datetime]:
    """Rule 5's window in calendar days at the session's clinic: from the first instant of the
    `low`-th local date after the session to the end of the `high`-th (any time on it fits)."""
    at, zone = Dated(session.starts_at, session.clinic.timezone), session.clinic.timezone
    return {
        "window_starts_at": first_instant_after(at, low, zone),
        "window_ends_at": first_instant_after(at, high + 1, zone),
    }


def _after_temporary_contraindications(
    db: Session, session: Appointment, window: dict[str, datetime], days: int
) -> dict[str, datetime]:
    """The window planned after the patient's temporary contraindications (rule 2): when they are
    active at its start, it starts at their end (the first instant of `until` in the clinic's zone)
    and keeps its end, or, when that end has passed by then, spans its `days` local dates from there.
    A permanent one leaves the window as it is (the search then says `contraindicated`)."""
    zone = session.clinic.timezone
    recorded = [
        r.recorded
        for r in db.scalars(
            sa.select(Contraindication).where(
                Contraindication.patient_id == session.patient_id, Contraindication.resolved_at.is_(None)
            )
        )
    ]
    try:
        check_contraindications(SESSION_KIND, recorded, Dated(window["window_starts_at"], zone))
    except Contraindicated as active:
        later = active.facts.get("earliest_start")
        if later is None:
            return window
        end = window["window_ends_at"]
        if end <= later:
            end = first_instant_after(Dated(later, zone), days, zone)
        return {"window_starts_at": later, "window_ends_at": end}
    return window


def _not_needed(follow_up: FollowUp, code: str, detail: str) -> FollowUp:
    follow_up.status, follow_up.reason_code, follow_up.reason_detail = "not_needed", code, detail
    return follow_up


def _next_session_exists(db: Session, session: Appointment, now: datetime) -> bool:
    kinds = sa.select(TreatmentType.id).where(TreatmentType.kind == SESSION_KIND)
    booked = sa.select(Appointment.id).where(
        Appointment.patient_id == session.patient_id,
        Appointment.status.in_(LIVE_STATUSES),
        Appointment.starts_at > session.starts_at,
        Appointment.treatment_type_id.in_(kinds),
    )
    held = sa.select(Hold.id).where(
        Hold.patient_id == session.patient_id,
        Hold.live(now),
        Hold.starts_at > session.starts_at,
        Hold.treatment_type_id.in_(kinds),
    )
    return db.scalar(sa.select(booked.exists() | held.exists())) or False


def _hold_best(
    db: Session, session: Appointment, follow_up: FollowUp, now: datetime, settings: FollowUpSettings
) -> tuple[Hold | None, DomainError | None]:
    """Continuity first: the session's practitioner, then anyone qualified at the clinic."""
    refusal = None
    for practitioner_id in (session.practitioner_id, None):
        slots, refusal = _slots(db, session, follow_up, now, settings, practitioner_id)
        for slot in sorted(slots, key=_closeness_to(session))[:ATTEMPTS]:
            request = SlotRequest(
                slot.clinic_id,
                slot.practitioner_id,
                slot.room_id,
                slot.treatment_type_id,
                session.patient_id,
                slot.starts_at,
                slot.procedure_starts_at,
                slot.ends_at,
                session.course_id,
                session.area,
            )
            expires_at = min(now + settings.hold_for, slot.starts_at - settings.release_before)
            try:
                with db.begin_nested():
                    return place_hold(
                        db,
                        session.organization_id,
                        request,
                        ttl=settings.hold_for,
                        source="follow_up",
                        expires_at=expires_at,
                    ), None
            except DomainError as taken:  # by a concurrent booking since the search
                refusal = taken
        if refusal is not None and not isinstance(refusal, InvalidInput) and not slots:
            break  # the patient's own rules rule the window out: another practitioner will not help
    return None, refusal


def _slots(
    db: Session,
    session: Appointment,
    follow_up: FollowUp,
    now: datetime,
    settings: FollowUpSettings,
    practitioner_id: str | None,
) -> tuple[list[Slot], DomainError | None]:
    window = settings.search.max_window
    query = Query(
        session.treatment_type_id,
        start=follow_up.window_starts_at,
        end=min(follow_up.window_ends_at, follow_up.window_starts_at + window),
        clinic_id=session.clinic_id,
        practitioner_id=practitioner_id,
        patient_id=session.patient_id,
        limit=10_000,
    )
    try:
        slots, refusal, _ = search(db, session.organization_id, query, settings.search)
    except InvalidInput:  # e.g. the practitioner has left since
        return [], None
    # A hold must stay confirmable for a while: not for a slot less than release_before away.
    return [s for s in slots if s.starts_at - settings.release_before > now], refusal


def _closeness_to(session: Appointment) -> Callable[[Slot], tuple[int, datetime]]:
    """Slots nearest the last session's local time of day first, then the earliest."""
    zone = ZoneInfo(session.clinic.timezone)
    local = session.starts_at.astimezone(zone)
    minute = local.hour * 60 + local.minute

    def key(slot: Slot) -> tuple[int, datetime]:
        start = slot.starts_at.astimezone(zone)
        return (abs(start.hour * 60 + start.minute - minute), slot.starts_at)

    return key


def effective_status(follow_up: FollowUp) -> str:
    """A proposal whose hold ran out is expired, even before the scheduler's sweep records it."""
    if follow_up.status == "proposed" and follow_up.hold is not None and follow_up.hold.lapsed(clock.now()):
        return "expired"
    return follow_up.status


def status_is(status: str):
    """The clause for follow-ups whose effective status is `status`."""
    lapsed = FollowUp.hold_id.in_(sa.select(Hold.id).where(Hold.lapsed(clock.now())))
    if status == "proposed":
        return sa.and_(FollowUp.status == "proposed", ~lapsed)
    if status == "expired":
        return sa.or_(FollowUp.status == "expired", sa.and_(FollowUp.status == "proposed", lapsed))
    return FollowUp.status == status
