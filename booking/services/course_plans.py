"""Course plans (issue 17): the remaining sessions of a course planned into free slots, nothing written.

The availability search gives the candidate slots over the whole planning span (each qualified
practitioner's, under the caller's booking policy); booking.domain.course_plan picks the plan,
checking the patient's rules (booking.services.patients.check_patient) with the sessions planned
before each one counted as if booked: the interval both ways, the caps, the consultation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain import policy as booking_policy
from booking.domain.availability import Slot
from booking.domain.calendar_days import Dated, local_date
from booking.domain.course_plan import Candidate, Outcome, Spacing, plan
from booking.domain.errors import CourseComplete, DomainError, TooFarAhead
from booking.services import availability_search, patients
from booking.services.queries import of_organization, one_of_organization
from models import Clinic, Course, Patient, Practitioner, TreatmentType

_CHUNK = timedelta(days=31)  # the availability search's longest window


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
    clinic: Clinic | None
    reason: DomainError | None
    code: str | None  # reason.code, or no_slot / previous_not_placed


@dataclass(frozen=True)
class CoursePlan:
    course: Course
    sessions: list[PlannedSession]


def plan_course(
    db: Session,
    org: str,
    course_id: str,
    preferences: Preferences,
    settings: availability_search.Settings,
    actor: booking_policy.Actor | None = None,
) -> CoursePlan:
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
    return CoursePlan(course, _sessions(outcome, count, len(facts.course_sessions), clinics, horizon_day))


def _candidates(db, org, treatment_type, patient, preferences, start, end, settings, actor):
    """Every free slot of each qualified practitioner in [start, end), under the actor's policy."""
    clinic_ids = preferences.clinic_ids or (None,)
    if preferences.practitioner_id:
        one_of_organization(db, org, Practitioner, preferences.practitioner_id, "practitioner_id")
        practitioner_ids = [preferences.practitioner_id]
    else:
        practitioner_ids = sorted(p.id for p in db.scalars(of_organization(Practitioner, org)))
    slots: list[Slot] = []
    clinics: dict[str, Clinic] = {}
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


def _candidate(slot: Slot, clinic: Clinic) -> Candidate:
    local = slot.starts_at.astimezone(ZoneInfo(clinic.timezone))
    return Candidate(
        local.date().toordinal(), slot.starts_at, slot.practitioner_id, local.hour * 60 + local.minute, slot
    )


def _fits(candidate: Candidate, clinic: Clinic, preferences: Preferences) -> bool:
    local = candidate.starts_at.astimezone(ZoneInfo(clinic.timezone))
    if preferences.weekdays and local.isoweekday() not in preferences.weekdays:
        return False
    if preferences.time_from is not None and candidate.minute < preferences.time_from:
        return False
    return preferences.time_to is None or candidate.minute < preferences.time_to


def _checker(facts: patients.PatientFacts, clinics: dict[str, Clinic]):
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


def _sessions(outcome: Outcome, count: int, done: int, clinics: dict[str, Clinic], horizon_day: int):
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
