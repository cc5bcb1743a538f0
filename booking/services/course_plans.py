"""Course plans (issue 17): the remaining sessions of a course planned into free slots, and held.

The availability search gives the candidate slots over the whole planning span (each qualified
practitioner's, under the caller's booking policy); booking.domain.course_plan picks the plan,
checking the patient's rules (booking.services.patients.check_patient) with the sessions planned
before each one counted as if booked: the interval both ways, the caps, the consultation.

`hold_plan` then holds every session (models.CoursePlan, one hold each with one expiry), all or
nothing: each hold goes through booking.services.appointments.place_hold, so every rule and the
database's overlap guard speak again for it, and any refusal leaves the caller's transaction to be
rolled back whole. `confirm_plan` books every hold in one transaction the same way, and
`release_plan` releases them. The plan's row is locked first, then its holds (the order
book_from_hold and release_hold lock in too), so two confirms, or a confirm and a release, are
serialized on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain import policy as booking_policy
from booking.domain.availability import Slot
from booking.domain.calendar_days import Dated, local_date
from booking.domain.course_plan import Candidate, Outcome, Spacing, plan
from booking.domain.errors import (
    CourseComplete,
    CoursePlanIncomplete,
    DomainError,
    HoldExpired,
    InvalidTransition,
    NotFound,
    SlotUnavailable,
    TooFarAhead,
)
from booking.services import appointments, availability_search, events, patients, policies
from booking.services.availability_cache import ClinicFacts
from booking.services.changes import check_version
from booking.services.queries import of_organization, one_of_organization
from models import Course, CoursePlan, Hold, Patient, Practitioner, TreatmentType

_CHUNK = timedelta(days=31)  # the availability search's longest window
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for a transaction it aborted to break a deadlock


@dataclass(frozen=True)
class Preferences:
    clinic_ids: tuple[str, ...] = ()  # none: every clinic of the organization
    practitioner_id: str | None = None
    weekdays: tuple[int, ...] = ()  # ISO 1 (Monday) to 7 (Sunday), in the clinic's zone; none: any
    time_from: int | None = None  # local start time of day in minutes after midnight, inclusive
    time_to: int | None = None  # the same, exclusive
    order: str = "earliest"
    sessions: int | None = None  # how many of the remaining to plan; none: all
    start: datetime | None = None


@dataclass(frozen=True)
class PlannedSession:
    number: int  # the session's number in the course
    slot: Slot | None
    clinic: ClinicFacts | None
    reason: DomainError | None
    code: str | None  # reason.code, or no_slot / previous_not_placed


@dataclass(frozen=True)
class PlannedCourse:
    """A plan as the planner found it: nothing written (a held one is a models.CoursePlan)."""

    course: Course
    sessions: list[PlannedSession]


def plan_course(
    db: Session,
    org: str,
    course_id: str,
    preferences: Preferences,
    settings: availability_search.Settings,
    actor: booking_policy.Actor | None = None,
) -> PlannedCourse:
    """Plan the course's remaining sessions; reads only."""
    course = one_of_organization(db, org, Course, course_id, "course_id")
    treatment_type = db.get_one(TreatmentType, course.treatment_type_id)
    patient = db.get_one(Patient, course.patient_id)
    now = clock.now()
    facts = patients.load_facts(db, patient, treatment_type, course, now)
    remaining = course.max_sessions - len(facts.course_sessions)
    if course.status != "active" or remaining <= 0:
        raise CourseComplete("The course takes no more sessions.", course_id=course.id)
    count = min(preferences.sessions or remaining, remaining)
    start = max(preferences.start or now, now)
    spacing_days = (treatment_type.min_interval_days or 28, treatment_type.recommended_interval_days or 42)
    end = start + timedelta(days=spacing_days[1] * count + 1)
    slots, clinics = _candidates(db, org, treatment_type, patient, preferences, start, end, settings, actor)
    first_day = start.date().toordinal() - 1  # the search starts no earlier than `start` anyway
    spacing = Spacing(*spacing_days, first_day=first_day, last_day=first_day + 1 + spacing_days[1])
    found = [_candidate(slot, clinics[slot.clinic_id]) for slot in slots]
    found = [c for c in found if _fits(c, clinics[c.slot.clinic_id], preferences)]
    outcome = plan(found, count, spacing, _checker(facts, clinics), preferences.order)
    horizon_day = local_date(now + settings.horizon, "UTC").toordinal()
    return PlannedCourse(course, _sessions(outcome, count, len(facts.course_sessions), clinics, horizon_day))


def _candidates(db, org, treatment_type, patient, preferences, start, end, settings, actor):
    """Every free slot of each qualified practitioner in [start, end), under the actor's policy."""
    clinic_ids = preferences.clinic_ids or (None,)
    if preferences.practitioner_id:
        one_of_organization(db, org, Practitioner, preferences.practitioner_id, "practitioner_id")
        practitioner_ids = [preferences.practitioner_id]
    else:
        practitioner_ids = sorted(p.id for p in db.scalars(of_organization(Practitioner, org)))
    slots: list[Slot] = []
    clinics: dict[str, ClinicFacts] = {}
    for clinic_id in clinic_ids:
        for practitioner_id in practitioner_ids:
            chunk = start
            while chunk < end:
                query = availability_search.Query(
                    treatment_type.id,
                    chunk,
                    min(chunk + _CHUNK, end),
                    clinic_id=clinic_id,
                    practitioner_id=practitioner_id,
                    patient_id=patient.id,
                    limit=100_000,
                    online_only=bool(actor and actor.frontend),
                    patient_rules=False,
                )
                found, _, searched = availability_search.search(db, org, query, settings, actor)
                slots += found
                clinics.update(searched)
                chunk += _CHUNK
    return slots, clinics


def _candidate(slot: Slot, clinic: ClinicFacts) -> Candidate:
    local = slot.starts_at.astimezone(ZoneInfo(clinic.timezone))
    return Candidate(
        local.date().toordinal(), slot.starts_at, slot.practitioner_id, local.hour * 60 + local.minute, slot
    )


def _fits(candidate: Candidate, clinic: ClinicFacts, preferences: Preferences) -> bool:
    local = candidate.starts_at.astimezone(ZoneInfo(clinic.timezone))
    if preferences.weekdays and local.isoweekday() not in preferences.weekdays:
        return False
    if preferences.time_from is not None and candidate.minute < preferences.time_from:
        return False
    return preferences.time_to is None or candidate.minute < preferences.time_to


def _checker(facts: patients.PatientFacts, clinics: dict[str, ClinicFacts]):
    def zone(c: Candidate) -> str:
        return clinics[c.slot.clinic_id].timezone

    def check(placed: tuple[Candidate, ...], candidate: Candidate) -> DomainError | None:
        planned = tuple(Dated(p.starts_at, zone(p)) for p in placed)
        as_if_booked = replace(
            facts, sessions=facts.sessions + planned, course_sessions=facts.course_sessions + planned
        )
        try:
            patients.check_patient(as_if_booked, candidate.starts_at, zone(candidate))
        except DomainError as refused:
            return refused.localized(ZoneInfo(zone(candidate)))
        return None

    return check


def _sessions(outcome: Outcome, count: int, done: int, clinics: dict[str, ClinicFacts], horizon_day: int):
    sessions = [
        PlannedSession(done + i + 1, c.slot, clinics[c.slot.clinic_id], None, None)
        for i, c in enumerate(outcome.placed)
    ]
    if len(sessions) < count:
        reason = outcome.refusal
        if reason is None and outcome.window is not None and outcome.window[1] > horizon_day:
            reason = TooFarAhead("The session's window reaches past the booking horizon.")
        code = reason.code if reason is not None else "no_slot"
        sessions.append(PlannedSession(done + len(sessions) + 1, None, None, reason, code))
    while len(sessions) < count:
        sessions.append(PlannedSession(done + len(sessions) + 1, None, None, None, "previous_not_placed"))
    return sessions


# --- held plans ----------------------------------------------------------------------------------


def hold_plan(
    db: Session,
    org: str,
    course_id: str,
    preferences: Preferences,
    settings: availability_search.Settings,
    actor: booking_policy.Actor,
    hold_minutes: int | None = None,
) -> CoursePlan:
    """Plan the course and hold every session at once, with one expiry; all or nothing.

    A session that cannot be placed is a CoursePlanIncomplete naming it; a hold refused (a slot
    taken meanwhile, a rule) raises its own error with `session` added. Either way the caller
    rolls the transaction back, so nothing is held."""
    planned = plan_course(db, org, course_id, preferences, settings, actor)
    _refuse_if_incomplete(planned)
    course = planned.course
    record = CoursePlan(
        organization_id=org,
        course_id=course.id,
        patient_id=course.patient_id,
        treatment_type_id=course.treatment_type_id,
        status="held",
        expires_at=clock.now() + _one_length(db, org, planned, actor, hold_minutes),
        first_number=planned.sessions[0].number,
    )
    db.add(record)
    db.flush()
    for session in planned.sessions:
        with _naming(session.number):
            appointments.place_hold(
                db,
                org,
                _request(session, course),
                source="course_plan",
                expires_at=record.expires_at,
                actor=actor,
                hold_minutes=hold_minutes,
                course_plan_id=record.id,
            )
    db.expire(record, ["holds"])
    _event(db, record, "course_plan.held")
    db.flush()
    return record


def _refuse_if_incomplete(planned: PlannedCourse) -> None:
    missing = next((s for s in planned.sessions if s.slot is None), None)
    if missing is None:
        return
    reason = missing.reason
    raise CoursePlanIncomplete(
        f"Session {missing.number} of the course cannot be placed ({missing.code}); nothing was held.",
        session=missing.number,
        reason={
            "code": missing.code,
            "detail": reason.detail if reason is not None else None,
            "earliest_start": reason.facts.get("earliest_start") if reason is not None else None,
        },
    )


def _one_length(
    db: Session, org: str, planned: PlannedCourse, actor: booking_policy.Actor, hold_minutes: int | None
) -> timedelta:
    """One expiry for every hold: the shortest that the policies of the plan's clinics give
    (each checks `hold_minutes` against its max_hold_minutes, as POST /v1/holds does)."""
    treatment_type = db.get_one(TreatmentType, planned.course.treatment_type_id)
    clinics = {s.clinic.id: s.clinic for s in planned.sessions if s.clinic is not None}
    return min(
        booking_policy.hold_length(policies.resolve(db, org, actor.defaults, c, treatment_type), actor, hold_minutes)
        for c in clinics.values()
    )


def _request(session: PlannedSession, course: Course) -> appointments.SlotRequest:
    slot = session.slot
    assert slot is not None  # _refuse_if_incomplete let only placed sessions through
    return appointments.SlotRequest(
        slot.clinic_id,
        slot.practitioner_id,
        slot.room_id,
        slot.treatment_type_id,
        course.patient_id,
        slot.starts_at,
        slot.procedure_starts_at,
        slot.ends_at,
        course.id,
    )


@contextmanager
def _naming(number: int) -> Iterator[None]:
    """Adds `session` (the plan session's number) to a refusal raised inside. A deadlock between
    two plans claiming the same resources in another order (PostgreSQL aborts one of them)
    becomes the same 409 as losing a claim: the slot was taken by a concurrent booking."""
    try:
        yield
    except DomainError as refused:
        refused.facts["session"] = number
        raise
    except sa.exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != DEADLOCK:
            raise
        raise SlotUnavailable("The slot was taken by a concurrent booking.", conflicts=[], session=number) from error


def get_plan(
    db: Session, org: str, plan_id: str, *, lock: bool = False, expected_version: int | None = None
) -> CoursePlan:
    query = sa.select(CoursePlan).where(CoursePlan.id == plan_id, CoursePlan.organization_id == org)
    if lock:
        query = query.with_for_update(of=CoursePlan).execution_options(populate_existing=True)
    record = db.scalar(query)
    if record is None:
        raise NotFound(f"No course plan with id '{plan_id}'.")
    check_version(record, expected_version)
    return record


def numbered(record: CoursePlan) -> list[tuple[int, Hold]]:
    """Each session's number in the course and its hold, in the order of the sessions."""
    return [(record.first_number + i, hold) for i, hold in enumerate(record.holds)]


def confirm_plan(
    db: Session, org: str, plan_id: str, actor: booking_policy.Actor | None = None, expected_version: int | None = None
) -> CoursePlan:
    """Book every session from its hold in this one transaction; a refusal names the session."""
    now = clock.now()
    record = get_plan(db, org, plan_id, lock=True, expected_version=expected_version)
    status = record.status_at(now)
    if status == "expired":
        first = record.holds[0].id if record.holds else None
        raise HoldExpired("The course plan's holds expired; plan the course again.", hold_id=first)
    if status != "held":
        raise InvalidTransition(f"The course plan is {status}.", current_status=status)
    for number, hold in numbered(record):
        with _naming(number):
            appointments.book_from_hold(db, org, hold.id, actor=actor, through_plan=True)
    record.status, record.confirmed_at = "confirmed", now
    db.flush()
    db.expire(record, ["holds"])
    _event(db, record, "course_plan.confirmed")
    db.flush()
    return record


def release_plan(db: Session, org: str, plan_id: str, expected_version: int | None = None) -> CoursePlan:
    """Release every hold; a plan already released or expired stays as it is."""
    now = clock.now()
    record = get_plan(db, org, plan_id, lock=True, expected_version=expected_version)
    status = record.status_at(now)
    if status == "confirmed":
        raise InvalidTransition(
            "The course plan is confirmed: cancel its appointments one by one.", current_status=status
        )
    if status == "expired" and record.status == "held":
        expire_plan(db, record, now)
    elif status == "held":
        for hold in record.holds:
            appointments.release_hold(db, org, hold.id, through_plan=True)
        record.status, record.released_at = "released", now
        db.flush()
        db.expire(record, ["holds"])
        _event(db, record, "course_plan.released")
    db.flush()
    return record


def expire_plan(db: Session, record: CoursePlan, now: datetime) -> int:
    """The expiry sweep's: a held plan past its expiry becomes expired, its holds released; how
    many holds that released (0: it was not due, or its holds had been released already)."""
    if record.status != "held" or record.expires_at > now:
        return 0
    released = 0
    for hold in record.holds:
        locked = db.scalar(sa.select(Hold).where(Hold.id == hold.id).with_for_update(of=Hold))
        if locked is not None:
            released += appointments.expire_hold(db, locked, now)
    record.status, record.released_at = "expired", now
    db.flush()
    db.expire(record, ["holds"])
    _event(db, record, "course_plan.released")  # its holds are released; `status` says it ran out
    return released


def _event(db: Session, record: CoursePlan, type_: str) -> None:
    events.add(
        db, record.organization_id, type_, f"{type_}:{record.id}", record.id, {"course_plan": plan_payload(record)}
    )


def plan_payload(record: CoursePlan) -> dict:
    """A plan as its events show it: each session's hold (tentative until confirmed) and appointment."""
    now = clock.now()
    holds = record.holds
    zone = holds[0].clinic.timezone if holds else "UTC"
    return {
        "id": record.id,
        "course_id": record.course_id,
        "patient_id": record.patient_id,
        "treatment_type_id": record.treatment_type_id,
        "status": record.status_at(now),
        "expires_at": clock.shown_in(record.expires_at, ZoneInfo(zone)).isoformat(),
        "sessions": [
            {
                "number": number,
                "hold": {**events.hold_payload(hold), "status": appointments.hold_status(hold, now)},
                "tentative": hold.outcome is None,
                "appointment_id": hold.appointment_id,
            }
            for number, hold in numbered(record)
        ],
    }
