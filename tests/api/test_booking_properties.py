"""Property: random booking traffic through the API never breaks the booking invariants.

Hypothesis drives random sequences of holds, bookings (directly and from a hold),
reschedules, cancellations, check-ins, completions, no-shows, hold releases and
clock advances through the HTTP API of a small world: one clinic in Europe/London,
two rooms, two practitioners working Mon-Sat 09:00-17:00, three patients with a
recorded consultation and an active acne_scars course (cap 4) each, one of them two
and one three sessions into it. Starts fall on a 15-minute grid up to six weeks from
the clock, crowded on tomorrow, four weeks on and the morning, and some steps aim
straight at an existing hold or appointment, so that collisions, interval violations
and cap hits happen. An example starts in winter or in the week before a DST change.

After every step the database itself is checked (plain SQL on the `db` fixture):

1. no resource is double-claimed: no two live claims on one resource intersect;
2. no two sessions of one patient (live microneedling appointments, live holds,
   past sessions) start closer than the minimum interval (28 days);
3. each course's `sessions_completed` is exactly its completed appointments plus its
   past sessions, and no course has more live sessions than its cap;
4. a cancelled appointment has no claims, a booked one exactly the claims its timing
   implies (an active hold likewise), a consumed or released hold none;
5. a refused request wrote nothing;

and every answer is one of the statuses the contract allows for the call, with a
problem+json `code` from the contract, never a 500. Beyond these safety checks an
independent oracle works out, from the same rows, which rules each request breaks:
the API must accept it when it breaks none and otherwise name one of those it
breaks, so it neither refuses a valid request nor accepts an invalid one.

Function-scoped fixtures are not reset between Hypothesis examples, so each example
builds its own organization and world and resets the clock; the examples share the
test's transaction, which is rolled back at the end. The last tests show that the
checker catches what it claims to (and that PostgreSQL's exclusion constraint
refuses a double claim outright).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from models import (
    LIVE_STATUSES,
    Appointment,
    Claim,
    Clinic,
    Course,
    Hold,
    PastSession,
    Patient,
    TreatmentType,
)

from .. import factories
from ..booking_world import MONDAY, any_time_policy, build_world
from ..helpers import make_organization

LONDON = ZoneInfo("Europe/London")
# Each example starts on a Monday at 08:00 UTC: in deep winter (4 January 2027), or in
# the week before British Summer Time begins (28 March) or ends (31 October), so
# that six weeks of bookings cross a DST change.
START_WEEKS = (0, 11, 42)
GRID = timedelta(minutes=15)
HORIZON_DAYS = 42
WORK_START, WORK_END = time(9), time(17)
CHECK_IN_EARLY = timedelta(hours=2)
CONSULTATION_VALID = timedelta(days=180)  # the treatment type's default

# Past course sessions per patient (days before the start): patient 0 starts
# its course here, patient 1 is two sessions in and may not restart until day 6,
# patient 2 is three sessions into a course of four.
PAST_SESSIONS = ([], [-50, -22], [-120, -90, -60])

# The contract's codes per status, per call.
RULES = {
    "validation_error",
    "numbing_lead_too_short",
    "outside_working_hours",
    "interval_too_short",
    "course_complete",
    "consultation_required",
}
SLOT = {201: None, 409: {"slot_unavailable"}, 422: RULES}
EXPECTED = {
    "hold": SLOT,
    "book": SLOT,
    "book_hold": {201: None, 409: {"slot_unavailable", "invalid_transition"}, 410: {"hold_expired"}, 422: RULES},
    "reschedule": {200: None, 409: {"slot_unavailable", "invalid_transition"}, 422: RULES},
    "cancel": {200: None, 409: {"invalid_transition"}},
    "check_in": {200: None, 409: {"invalid_transition"}},
    "complete": {200: None, 409: {"invalid_transition"}},
    "no_show": {200: None, 409: {"invalid_transition"}},
    "release": {204: None},
}
SUCCESS = {
    "hold": 201,
    "book": 201,
    "book_hold": 201,
    "reschedule": 200,
    "release": 204,
    "cancel": 200,
    "check_in": 200,
    "complete": 200,
    "no_show": 200,
}


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Slot:
    """POST /v1/holds or /v1/appointments with a slot."""

    action: str  # hold | book
    patient: int
    practitioner: int
    room: int
    in_days: int  # days after the clock's current day
    quarter: int  # 15-minute steps from 08:00 local
    review: bool  # a review instead of a microneedling session
    explicit_course: bool  # send the patient's course_id rather than let it default
    extra_numbing: int | None  # minutes beyond the default lead; None: procedure_starts_at not sent


@dataclass(frozen=True)
class Collide:
    """A slot aimed at an existing hold or appointment (any state): the same room and
    practitioner, or one of them swapped, shifted by a few quarter-hours."""

    action: str  # hold | book
    target: int
    patient: int
    shift: int  # quarter-hours
    swap: str  # none | room | practitioner
    review: bool


@dataclass(frozen=True)
class BookHold:
    hold: int


@dataclass(frozen=True)
class Reschedule:
    appointment: int
    in_days: int | None
    quarter: int
    room: int | None
    practitioner: int | None


@dataclass(frozen=True)
class Transition:
    action: str  # cancel | check_in | complete | no_show
    appointment: int
    clock_to: int | None = None  # first move the clock to this many minutes from its start (never back)


@dataclass(frozen=True)
class Release:
    hold: int


@dataclass(frozen=True)
class Advance:
    minutes: int


@dataclass(frozen=True)
class AdvancePast:
    """Move the clock to around an appointment's start (to check it in, complete it, or miss it)."""

    appointment: int
    minutes: int


# Crowd tomorrow, four weeks after it (the interval's edge) and the morning hours so
# that requests collide; the rest still reaches today, Sundays, evenings and weeks on.
days = st.one_of(st.just(1), st.just(29), st.sampled_from([0, 1, 2, 7, 28, 30, 35]), st.integers(-1, HORIZON_DAYS))
quarters = st.one_of(st.just(4), st.integers(4, 8), st.integers(0, 36))  # 09:00; 09:00-10:00; 08:00-17:00
index = st.integers(0, 40)


def slots():
    return st.builds(
        Slot,
        st.sampled_from(["hold", "book", "book"]),
        st.sampled_from([0, 1, 2, 2]),
        st.integers(0, 1),
        st.integers(0, 1),
        days,
        quarters,
        st.sampled_from([False, False, True]),
        st.booleans(),
        st.sampled_from([None] * 5 + [0, 15, 30, -15]),
    )


def transitions():
    return st.builds(
        Transition,
        st.sampled_from(["cancel", "check_in", "complete", "complete", "no_show"]),
        index,
        st.none() | st.sampled_from([-120, -30, 0, 45, 90]),
    )


def collisions():
    return st.builds(
        Collide,
        st.sampled_from(["hold", "book"]),
        index,
        st.sampled_from([0, 1, 2, 2]),
        st.integers(-5, 5),
        st.sampled_from(["none", "room", "practitioner"]),
        st.sampled_from([False, False, True]),
    )


# st.one_of draws its branches about evenly (and merges equal ones): build a branch
# again to weigh it.
steps = st.one_of(
    slots(),
    slots(),
    slots(),
    collisions(),
    collisions(),
    st.builds(BookHold, index),
    st.builds(
        Reschedule, index, st.none() | days, quarters, st.none() | st.integers(0, 1), st.none() | st.integers(0, 1)
    ),
    transitions(),
    transitions(),
    st.builds(Release, index),
    st.builds(Advance, st.sampled_from([5, 15, 15, 60, 240, 24 * 60, 7 * 24 * 60])),
    st.builds(AdvancePast, index, st.sampled_from([-120, -30, 0, 1, 45, 90])),
)


# --------------------------------------------------------------------------- the world


@dataclass
class Env:
    caller: object
    org: str
    clinic: str
    rooms: list[str]
    practitioners: list[str]
    patients: list[str]
    courses: list[str]
    microneedling: str
    review: str
    appointments: list[str]
    holds: list[str]


_worlds = itertools.count()


def make_env(app, client, clock, weeks: int = 0) -> Env:
    """The world on the ORM (tests/factories.py): the properties are about the booking calls, not set-up."""
    clock.now = start = MONDAY + timedelta(weeks=weeks, hours=8)
    caller = make_organization(app, client, f"Property chain {next(_worlds)}")
    any_time_policy(caller)  # the invariants of claims, not the booking policy (test_booking_policy.py)
    world = build_world(caller, clock)
    with app.extensions["db_write_sessions"]() as db:
        clinic = db.get(Clinic, world.clinic["id"])
        consultation, microneedling, review = (
            db.get(TreatmentType, getattr(world, kind)["id"]) for kind in ("consultation", "microneedling", "review")
        )
        second = factories.make_practitioner(db, [clinic], [consultation, microneedling, review], name="Dr Two")
        patients = [db.get(Patient, world.patient["id"])] + [
            factories.make_patient(db, caller.organization_id, name=f"Patient {i}", email=f"p{i}@example.com")
            for i in (1, 2)
        ]
        courses = []
        for patient, past in zip(patients, PAST_SESSIONS, strict=True):
            factories.make_past_session(db, patient, consultation, at(-10, 8, today=start))
            course = factories.make_course(db, patient, microneedling, indication="acne_scars")
            assert course.max_sessions == 4
            for day in past:
                factories.make_past_session(db, patient, microneedling, at(day, 8, today=start), course_id=course.id)
            courses.append(course.id)
        ids = [p.id for p in patients], second.id
        db.commit()
    patients, second = ids
    return Env(
        caller,
        caller.organization_id,
        world.clinic["id"],
        [r["id"] for r in world.rooms],
        [world.practitioner["id"], second],
        patients,
        courses,
        world.microneedling["id"],
        world.review["id"],
        [],
        [],
    )


def at(day: int, quarter: int, *, today: datetime = MONDAY) -> datetime:
    """08:00 local plus `quarter` quarter-hours, `day` days after `today`'s local date."""
    date = today.astimezone(LONDON).date() + timedelta(days=day)
    return (datetime.combine(date, time(8), tzinfo=LONDON) + quarter * GRID).astimezone(MONDAY.tzinfo)


# --------------------------------------------------------------------------- reading the database


def _rows(db, *columns, where=()):
    return db.execute(sa.select(*columns).where(*where)).all()


def _timings(db, org: str) -> dict:
    return {
        t.id: t
        for t in _rows(
            db,
            TreatmentType.id,
            TreatmentType.kind,
            TreatmentType.numbing_minutes,
            TreatmentType.prep_minutes,
            TreatmentType.procedure_minutes,
            TreatmentType.aftercare_minutes,
            TreatmentType.turnover_minutes,
            TreatmentType.min_interval_days,
            where=[TreatmentType.organization_id == org],
        )
    }


def expected_claims(t, patient_id, practitioner_id, room_id, start, procedure, end) -> Counter:
    """What a slot must claim, worked out here from the timing (rules 3 and 4), not by the app."""
    needs = [
        (f"patient:{patient_id}", start, end),
        (f"room:{room_id}", start, end + timedelta(minutes=t.turnover_minutes)),
        (f"practitioner:{practitioner_id}", procedure, end),
    ]
    prep_end = min(start + timedelta(minutes=t.prep_minutes), procedure)
    if prep_end > start:
        needs.append((f"practitioner:{practitioner_id}", start, prep_end))
    return Counter(needs)


def claims_of(timings: dict, slot) -> Counter:
    """The claims an appointment or hold row must hold."""
    return expected_claims(
        timings[slot.treatment_type_id],
        slot.patient_id,
        slot.practitioner_id,
        slot.room_id,
        slot.starts_at,
        slot.procedure_starts_at,
        slot.ends_at,
    )


APPOINTMENT_COLUMNS = (
    Appointment.id,
    Appointment.status,
    Appointment.patient_id,
    Appointment.practitioner_id,
    Appointment.room_id,
    Appointment.clinic_id,
    Appointment.treatment_type_id,
    Appointment.course_id,
    Appointment.starts_at,
    Appointment.procedure_starts_at,
    Appointment.ends_at,
)
HOLD_COLUMNS = (
    Hold.id,
    Hold.outcome,
    Hold.expires_at,
    Hold.patient_id,
    Hold.practitioner_id,
    Hold.room_id,
    Hold.clinic_id,
    Hold.treatment_type_id,
    Hold.course_id,
    Hold.starts_at,
    Hold.procedure_starts_at,
    Hold.ends_at,
)
CLAIM_COLUMNS = (
    Claim.id,
    Claim.resource,
    Claim.starts_at,
    Claim.ends_at,
    Claim.appointment_id,
    Claim.hold_id,
    Claim.expires_at,
)
COURSE_COLUMNS = (
    Course.id,
    Course.patient_id,
    Course.treatment_type_id,
    Course.status,
    Course.max_sessions,
    Course.sessions_completed,
)


def snapshot(db, org: str) -> tuple:
    """Everything a booking call may write, to show a refused one wrote nothing."""

    def rows(columns, model):
        return sorted(tuple(r) for r in _rows(db, *columns, where=[model.organization_id == org]))

    return (
        rows(CLAIM_COLUMNS, Claim),
        rows(APPOINTMENT_COLUMNS, Appointment),
        rows(HOLD_COLUMNS, Hold),
        rows(COURSE_COLUMNS, Course),
        rows((PastSession.id, PastSession.course_id, PastSession.performed_at), PastSession),
    )


def is_live_hold(hold, now: datetime) -> bool:
    return hold.outcome is None and hold.expires_at > now


def check_invariants(db, org: str, now: datetime) -> None:
    """Raise AssertionError listing every invariant the organization's rows break."""
    timings = _timings(db, org)
    claims = _rows(db, *CLAIM_COLUMNS, where=[Claim.organization_id == org])
    appointments = _rows(db, *APPOINTMENT_COLUMNS, where=[Appointment.organization_id == org])
    holds = _rows(db, *HOLD_COLUMNS, where=[Hold.organization_id == org])
    courses = _rows(db, *COURSE_COLUMNS, where=[Course.organization_id == org])
    past = _rows(
        db,
        PastSession.patient_id,
        PastSession.treatment_type_id,
        PastSession.course_id,
        PastSession.performed_at,
        where=[PastSession.organization_id == org],
    )
    problems: list[str] = []

    # 1. No resource double-claimed.
    live_claims = [c for c in claims if c.expires_at is None or c.expires_at > now]
    by_resource = defaultdict(list)
    for c in live_claims:
        by_resource[c.resource].append(c)
    for resource, rows in by_resource.items():
        rows.sort(key=lambda c: (c.starts_at, c.ends_at))
        for a, b in itertools.combinations(rows, 2):
            if a.starts_at < b.ends_at and b.starts_at < a.ends_at:
                problems.append(f"double claim on {resource}: {tuple(a)} and {tuple(b)}")
    for c in claims:
        if (c.appointment_id is None) == (c.hold_id is None):
            problems.append(f"claim {c.id} must belong to exactly one appointment or hold: {tuple(c)}")

    # 2. Sessions of one patient at least the minimum interval apart.
    sessions = defaultdict(list)
    for a in appointments:
        if a.status in LIVE_STATUSES and timings[a.treatment_type_id].kind == "microneedling":
            sessions[a.patient_id].append((a.starts_at, a.treatment_type_id, f"appointment {a.id} ({a.status})"))
    for h in holds:
        if is_live_hold(h, now) and timings[h.treatment_type_id].kind == "microneedling":
            sessions[h.patient_id].append((h.starts_at, h.treatment_type_id, f"hold {h.id}"))
    for p in past:
        if timings[p.treatment_type_id].kind == "microneedling":
            sessions[p.patient_id].append((p.performed_at, p.treatment_type_id, "past session"))
    for patient, starts in sessions.items():
        for (s1, t1, what1), (s2, t2, what2) in itertools.combinations(sorted(starts), 2):
            minimum = max(timings[t1].min_interval_days or 0, timings[t2].min_interval_days or 0)
            if _days_apart(s1, s2) < minimum:  # calendar days on the (one, London) clinic's clock
                problems.append(f"patient {patient}: {what1} at {s1} and {what2} at {s2} are {s2 - s1} apart")

    # 3. Course counts exact, caps kept.
    for course in courses:
        completed = sum(1 for a in appointments if a.course_id == course.id and a.status == "completed")
        recorded = sum(1 for p in past if p.course_id == course.id)
        if course.sessions_completed != completed + recorded:
            problems.append(
                f"course {course.id}: sessions_completed {course.sessions_completed}, but "
                f"{completed} completed appointments and {recorded} past sessions"
            )
        live = (
            sum(1 for a in appointments if a.course_id == course.id and a.status in LIVE_STATUSES)
            + sum(1 for h in holds if h.course_id == course.id and is_live_hold(h, now))
            + recorded
        )
        if live > course.max_sessions:
            problems.append(f"course {course.id}: {live} live sessions over its cap of {course.max_sessions}")
        if course.sessions_completed >= course.max_sessions and course.status == "active":
            problems.append(f"course {course.id}: {course.sessions_completed} sessions done and still active")
    for slot in [*appointments, *holds]:
        if slot.course_id is not None and timings[slot.treatment_type_id].kind != "microneedling":
            problems.append(f"{slot.id}: a {timings[slot.treatment_type_id].kind} on course {slot.course_id}")

    # 4. Claims follow the appointment's and the hold's state.
    claimed = defaultdict(Counter)
    for c in claims:
        claimed[c.appointment_id or c.hold_id][(c.resource, c.starts_at, c.ends_at)] += 1
    for a in appointments:
        expected, actual = claims_of(timings, a), claimed.get(a.id, Counter())
        if a.status == "cancelled" and actual:
            problems.append(f"cancelled appointment {a.id} still claims {sorted(actual)}")
        elif a.status in ("booked", "checked_in") and actual != expected:
            problems.append(f"{a.status} appointment {a.id} claims {sorted(actual)}, expected {sorted(expected)}")
        elif actual - expected:
            problems.append(f"{a.status} appointment {a.id} claims more than its slot: {sorted(actual - expected)}")
    for c in claims:
        if c.appointment_id is not None and c.expires_at is not None:
            problems.append(f"claim {c.id} of appointment {c.appointment_id} expires")
    for h in holds:
        expected, actual = claims_of(timings, h), claimed.get(h.id, Counter())
        own = [c for c in claims if c.hold_id == h.id]
        if h.outcome is not None and actual:
            problems.append(f"{h.outcome} hold {h.id} still claims {sorted(actual)}")
        elif is_live_hold(h, now) and (actual != expected or any(c.expires_at != h.expires_at for c in own)):
            problems.append(f"active hold {h.id} claims {[tuple(c) for c in own]}, expected {sorted(expected)}")
        elif actual - expected:
            problems.append(f"expired hold {h.id} claims more than its slot: {sorted(actual - expected)}")

    assert not problems, "invariants broken:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class Request:
    patient_id: str
    practitioner_id: str
    room_id: str
    treatment_type_id: str
    starts_at: datetime
    procedure_starts_at: datetime | None
    course_id: str | None


def predict(
    db, env: Env, now: datetime, req: Request, *, exclude_appointment=None, exclude_hold=None
) -> frozenset[str]:
    """The rules a slot request breaks (their codes; empty: it deserves a success),
    worked out from the rows alone. When it breaks several, which one the API names
    first is its own business: the answer must be one of them."""
    t = _timings(db, env.org)[req.treatment_type_id]
    broken = set()
    earliest = req.starts_at + timedelta(minutes=t.numbing_minutes)
    procedure = req.procedure_starts_at or earliest
    if procedure < earliest:
        broken.add("numbing_lead_too_short")
    ends_at = procedure + timedelta(minutes=t.procedure_minutes + t.aftercare_minutes)
    if req.starts_at <= now:
        broken.add("validation_error")
    local_start, local_end = req.starts_at.astimezone(LONDON), ends_at.astimezone(LONDON)
    if (
        local_start.weekday() == 6
        or local_start.date() != local_end.date()
        or local_start.time() < WORK_START
        or local_end.time() > WORK_END
    ):
        broken.add("outside_working_hours")

    if t.kind == "microneedling":
        timings = _timings(db, env.org)
        appointments = [
            a
            for a in _rows(
                db,
                *APPOINTMENT_COLUMNS,
                where=[Appointment.patient_id == req.patient_id, Appointment.status.in_(LIVE_STATUSES)],
            )
            if a.id != exclude_appointment and timings[a.treatment_type_id].kind == "microneedling"
        ]
        holds = [
            h
            for h in _rows(db, *HOLD_COLUMNS, where=[Hold.patient_id == req.patient_id])
            if h.id != exclude_hold and is_live_hold(h, now) and timings[h.treatment_type_id].kind == "microneedling"
        ]
        past = _rows(
            db,
            PastSession.treatment_type_id,
            PastSession.course_id,
            PastSession.performed_at,
            where=[PastSession.patient_id == req.patient_id],
        )
        sessions = (
            [(a.starts_at, a.course_id) for a in appointments]
            + [(h.starts_at, h.course_id) for h in holds]
            + [(p.performed_at, p.course_id) for p in past if timings[p.treatment_type_id].kind == "microneedling"]
        )
        if any(_days_apart(req.starts_at, s) < t.min_interval_days for s, _ in sessions):
            broken.add("interval_too_short")
        courses = _rows(
            db,
            *COURSE_COLUMNS,
            where=[Course.patient_id == req.patient_id, Course.treatment_type_id == req.treatment_type_id],
        )
        if req.course_id is not None:
            course = next(c for c in courses if c.id == req.course_id)
        else:
            active = [c for c in courses if c.status == "active"]
            course = active[0] if len(active) == 1 else None
            if not active and any(c.status == "complete" for c in courses):
                broken.add("course_complete")  # leaving course_id out must not book past a finished course
        if course is not None:
            own = [s for s, c in sessions if c == course.id]
            if course.status != "active" or len(own) >= course.max_sessions:
                broken.add("course_complete")
            first = not any(s < req.starts_at for s in own)
        else:
            first = not any(s < req.starts_at for s, _ in sessions)
        if first:
            consultations = [p.performed_at for p in past if timings[p.treatment_type_id].kind == "consultation"]
            if not any(req.starts_at - CONSULTATION_VALID <= c < req.starts_at for c in consultations):
                broken.add("consultation_required")

    needs = expected_claims(t, req.patient_id, req.practitioner_id, req.room_id, req.starts_at, procedure, ends_at)
    for c in _rows(db, *CLAIM_COLUMNS, where=[Claim.organization_id == env.org]):
        if c.expires_at is not None and c.expires_at <= now:
            continue
        if exclude_appointment and c.appointment_id == exclude_appointment:
            continue
        if exclude_hold and c.hold_id == exclude_hold:
            continue
        if any(c.resource == r and c.starts_at < e and s < c.ends_at for r, s, e in needs):
            broken.add("slot_unavailable")
    return frozenset(broken)


def predict_transition(action: str, appointment, now: datetime) -> set[str]:
    status, start = appointment.status, appointment.starts_at
    ok = {
        "cancel": status in ("booked", "checked_in"),
        "check_in": status == "booked" and now >= start - CHECK_IN_EARLY,
        "complete": status in ("booked", "checked_in") and now >= start,
        "no_show": status == "booked" and now >= start,
    }[action]
    return set() if ok else {"invalid_transition"}


# --------------------------------------------------------------------------- driving the API


def _pick(items: list, i: int):
    return items[i % len(items)] if items else None


def _by_start(db, env: Env) -> list[str]:
    """The example's appointments, earliest first: the ones the clock reaches first."""
    return list(
        db.scalars(
            sa.select(Appointment.id)
            .where(Appointment.id.in_(env.appointments))
            .order_by(Appointment.starts_at, Appointment.id)
        )
    )


def _appointment(db, appointment_id: str):
    return db.execute(sa.select(*APPOINTMENT_COLUMNS).where(Appointment.id == appointment_id)).one()


def run_step(db, env: Env, clock, step) -> None:
    """Send one step to the API; check the answer against the contract and the oracle."""
    caller, now = env.caller, clock.now
    if isinstance(step, Advance):
        clock.advance(minutes=step.minutes)
        return
    if isinstance(step, AdvancePast):
        appointment_id = _pick(_by_start(db, env), step.appointment)
        if appointment_id is not None:
            target = _appointment(db, appointment_id).starts_at + timedelta(minutes=step.minutes)  # may be < now
            clock.now = max(clock.now, target)
        return

    if isinstance(step, Slot):
        action = step.action
        treatment = env.review if step.review else env.microneedling
        starts_at = at(step.in_days, step.quarter, today=now)
        body = {
            "clinic_id": env.clinic,
            "practitioner_id": env.practitioners[step.practitioner],
            "room_id": env.rooms[step.room],
            "treatment_type_id": treatment,
            "patient_id": env.patients[step.patient],
            "starts_at": starts_at.isoformat(),
        }
        procedure = None
        if step.extra_numbing is not None and not step.review:
            procedure = starts_at + timedelta(minutes=30 + step.extra_numbing)
            body["procedure_starts_at"] = procedure.isoformat()
        course = None
        if step.explicit_course and not step.review:
            course = body["course_id"] = env.courses[step.patient]
        prediction = predict(
            db,
            env,
            now,
            Request(
                body["patient_id"], body["practitioner_id"], body["room_id"], treatment, starts_at, procedure, course
            ),
        )
        path = "/v1/holds" if action == "hold" else "/v1/appointments"
        call = partial(caller.post, path, json=body)
    elif isinstance(step, Collide):
        action = step.action
        target_id = _pick(env.holds + env.appointments, step.target)
        if target_id is None:
            return
        model = Hold if target_id in env.holds else Appointment
        target = db.execute(
            sa.select(model.room_id, model.practitioner_id, model.starts_at).where(model.id == target_id)
        ).one()
        room, practitioner = target.room_id, target.practitioner_id
        if step.swap == "room":
            room = next(r for r in env.rooms if r != room)
        elif step.swap == "practitioner":
            practitioner = next(p for p in env.practitioners if p != practitioner)
        treatment = env.review if step.review else env.microneedling
        starts_at = target.starts_at + step.shift * GRID
        body = {
            "clinic_id": env.clinic,
            "practitioner_id": practitioner,
            "room_id": room,
            "treatment_type_id": treatment,
            "patient_id": env.patients[step.patient],
            "starts_at": starts_at.isoformat(),
        }
        prediction = predict(
            db, env, now, Request(body["patient_id"], practitioner, room, treatment, starts_at, None, None)
        )
        path = "/v1/holds" if action == "hold" else "/v1/appointments"
        call = partial(caller.post, path, json=body)
    elif isinstance(step, BookHold):
        action = "book_hold"
        hold_id = _pick(env.holds, step.hold)
        if hold_id is None:
            return
        hold = db.execute(sa.select(*HOLD_COLUMNS).where(Hold.id == hold_id)).one()
        if hold.outcome == "booked":
            prediction = {"invalid_transition"}
        elif hold.outcome is not None or hold.expires_at <= now:
            prediction = {"hold_expired"}
        else:
            prediction = predict(
                db,
                env,
                now,
                Request(
                    hold.patient_id,
                    hold.practitioner_id,
                    hold.room_id,
                    hold.treatment_type_id,
                    hold.starts_at,
                    hold.procedure_starts_at,
                    hold.course_id,
                ),
                exclude_hold=hold.id,
            )
        call = partial(caller.post, "/v1/appointments", json={"hold_id": hold_id})
    elif isinstance(step, Reschedule):
        action = "reschedule"
        appointment_id = _pick(env.appointments, step.appointment)
        if appointment_id is None:
            return
        old = _appointment(db, appointment_id)
        changes = {}
        if step.in_days is not None or (step.room is None and step.practitioner is None):
            changes["starts_at"] = at(step.in_days or 0, step.quarter, today=now).isoformat()
        if step.room is not None:
            changes["room_id"] = env.rooms[step.room]
        if step.practitioner is not None:
            changes["practitioner_id"] = env.practitioners[step.practitioner]
        if old.status != "booked":
            prediction = {"invalid_transition"}
        elif _names_its_own_slot(db, env, old, changes):
            prediction = set()  # nothing to move: a success that changes nothing, even in the past
        else:
            starts_at = datetime.fromisoformat(changes["starts_at"]) if "starts_at" in changes else old.starts_at
            prediction = predict(
                db,
                env,
                now,
                Request(
                    old.patient_id,
                    changes.get("practitioner_id", old.practitioner_id),
                    changes.get("room_id", old.room_id),
                    old.treatment_type_id,
                    starts_at,
                    None if "starts_at" in changes else old.procedure_starts_at,
                    old.course_id,
                ),
                exclude_appointment=old.id,
            )
        call = partial(caller.patch, f"/v1/appointments/{appointment_id}", json=changes)
    elif isinstance(step, Transition):
        action = step.action
        appointment_id = _pick(_by_start(db, env), step.appointment)
        if appointment_id is None:
            return
        appointment = _appointment(db, appointment_id)
        if step.clock_to is not None:
            clock.now = now = max(now, appointment.starts_at + timedelta(minutes=step.clock_to))
        prediction = predict_transition(action, appointment, now)
        path = f"/v1/appointments/{appointment_id}/{action.replace('_', '-')}"
        body = {"reason": "patient_request"} if action == "cancel" else None
        call = partial(caller.post, path, json=body)
    elif isinstance(step, Release):
        action = "release"
        hold_id = _pick(env.holds, step.hold)
        if hold_id is None:
            return
        prediction = set()
        call = partial(caller.delete, f"/v1/holds/{hold_id}")
    else:  # pragma: no cover
        raise TypeError(step)

    before = snapshot(db, env.org)
    response = call()
    answer = check_answer(action, response)
    event(f"{action}: {answer}")
    assert answer in (prediction or {"ok"}), (
        f"{action} answered {response.status_code} {answer}, the oracle expected {sorted(prediction) or 'ok'}: "
        f"{response.get_json()}"
    )
    if answer != "ok":
        assert snapshot(db, env.org) == before, f"refused {action} wrote something"
        return
    data = response.get_json() if response.status_code != 204 else None
    if action == "hold":
        env.holds.append(data["id"])
    elif action in ("book", "book_hold", "reschedule"):
        env.appointments.append(data["id"])
        assert data["status"] == "booked"
    elif action in ("cancel", "complete", "no_show"):
        assert data["status"] == {"cancel": "cancelled", "complete": "completed", "no_show": "no_show"}[action]
    elif action == "check_in":
        assert data["status"] == "checked_in"


def _names_its_own_slot(db, env: Env, old, changes: dict) -> bool:
    """The reschedule asks for the slot the appointment has: the same room, practitioner and start,
    and (a start sent alone gets the default numbing lead) the same lead."""
    current = {"starts_at": old.starts_at, "room_id": old.room_id, "practitioner_id": old.practitioner_id}
    for field, value in changes.items():
        asked = datetime.fromisoformat(value) if field == "starts_at" else value
        if asked != current[field]:
            return False
    numbing = timedelta(minutes=_timings(db, env.org)[old.treatment_type_id].numbing_minutes)
    return "starts_at" not in changes or old.procedure_starts_at == old.starts_at + numbing


def check_answer(action: str, response) -> str:
    """The response is one the contract allows for `action`: 'ok', or the problem's code."""
    allowed = EXPECTED[action]
    assert response.status_code in allowed, (action, response.status_code, response.get_data(as_text=True))
    if response.status_code == SUCCESS[action]:
        return "ok"
    assert response.mimetype == "application/problem+json", (action, response.mimetype)
    body = response.get_json()
    assert body["status"] == response.status_code and body["code"] in allowed[response.status_code], (action, body)
    return body["code"]


# --------------------------------------------------------------------------- the property


@settings(
    max_examples=int(os.environ.get("BOOKING_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(weeks=st.sampled_from(START_WEEKS), sequence=st.lists(steps, min_size=10, max_size=30))
# Found by the property: a booked appointment already under way, rescheduled to its own slot, is a
# success that changes nothing (the product's no-op), not a start in the past.
@example(
    weeks=0,
    sequence=[Slot("book", 0, 0, 0, 1, 4, True, False, None), AdvancePast(0, 60), Reschedule(0, 0, 4, None, None)],
)
def test_random_booking_traffic_keeps_every_invariant(app, client, db, clock, weeks, sequence):
    env = make_env(app, client, clock, weeks)
    check_invariants(db, env.org, clock.now)
    for number, step in enumerate(sequence):
        note(f"step {number} at {clock.now.isoformat()}: {step}")
        run_step(db, env, clock, step)
        check_invariants(db, env.org, clock.now)


# --------------------------------------------------------------------------- the checker catches


@pytest.fixture
def env(app, client, clock):
    return make_env(app, client, clock)


def _book(env: Env, day=0, quarter=8, patient=0, room=0, practitioner=0) -> dict:
    return env.caller.create(
        "/v1/appointments",
        {
            "clinic_id": env.clinic,
            "practitioner_id": env.practitioners[practitioner],
            "room_id": env.rooms[room],
            "treatment_type_id": env.microneedling,
            "patient_id": env.patients[patient],
            "starts_at": at(day, quarter).isoformat(),
        },
    )


def test_an_overlapping_claim_is_refused_by_postgresql_and_caught_by_the_checker(backend, db, env, clock):
    appointment = _book(env)
    check_invariants(db, env.org, clock.now)
    room = f"room:{env.rooms[0]}"
    starts = datetime.fromisoformat(appointment["starts_at"]) + timedelta(minutes=20)
    intruder = {
        "organization_id": env.org,
        "resource": room,
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=1),
        "appointment_id": appointment["id"],
    }
    if backend[0] == "postgresql":
        # The exclusion constraint has the last word: the row cannot even be written.
        with pytest.raises(IntegrityError, match="ex_claims_resource_during"), db.begin_nested():
            db.add(Claim(**intruder))
            db.flush()
        check_invariants(db, env.org, clock.now)
        return
    with db.begin_nested() as nested:
        # SQLite relies on serialized writers (and may carry an insert trigger as a
        # backstop): drop any trigger on claims inside this savepoint so the row lands.
        triggers = db.scalars(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'claims'")
        ).all()
        for name in triggers:
            db.execute(sa.text(f'DROP TRIGGER "{name}"'))
        db.add(Claim(**intruder))
        db.flush()
        with pytest.raises(AssertionError, match=f"double claim on {room}"):
            check_invariants(db, env.org, clock.now)
        nested.rollback()
    check_invariants(db, env.org, clock.now)


def test_an_expired_hold_claim_does_not_count_as_a_double_claim(backend, db, env, clock):
    hold = env.caller.create(
        "/v1/holds",
        {
            "clinic_id": env.clinic,
            "practitioner_id": env.practitioners[0],
            "room_id": env.rooms[0],
            "treatment_type_id": env.review,
            "patient_id": env.patients[0],
            "starts_at": at(0, 8).isoformat(),
        },
    )
    clock.advance(minutes=11)
    check_invariants(db, env.org, clock.now)  # the hold lapsed; its claims linger, counting for nothing
    _book(env, patient=2, quarter=8)  # the next writer takes the range, dropping the lapsed claims
    check_invariants(db, env.org, clock.now)
    lingering = db.scalars(sa.select(Claim.resource).where(Claim.hold_id == hold["id"])).all()
    assert lingering == [f"patient:{env.patients[0]}"]  # only what the new booking did not need


def _days_apart(a: datetime, b: datetime) -> int:
    """Days between the two instants' dates in London (rule 5 counts calendar days)."""
    return abs((a.astimezone(LONDON).date() - b.astimezone(LONDON).date()).days)


def test_the_checker_catches_a_broken_interval_count_or_cancellation(db, env, clock):
    first = _book(env)
    _book(env, patient=1, day=7)
    check_invariants(db, env.org, clock.now)

    too_close = db.get(Appointment, first["id"])
    clone = Appointment(
        **{
            c: getattr(too_close, c)
            for c in (
                "organization_id",
                "clinic_id",
                "practitioner_id",
                "room_id",
                "treatment_type_id",
                "patient_id",
                "course_id",
                "area",
                "procedure_starts_at",
                "ends_at",
            )
        },
        status="booked",
        starts_at=too_close.starts_at + timedelta(days=27),
    )
    with db.begin_nested() as nested:
        db.add(clone)
        db.flush()
        with pytest.raises(AssertionError, match="are 27 days"):
            check_invariants(db, env.org, clock.now)
        nested.rollback()

    course = db.get(Course, env.courses[0])
    with db.begin_nested() as nested:
        course.sessions_completed += 1
        db.flush()
        with pytest.raises(AssertionError, match="sessions_completed 1, but 0 completed"):
            check_invariants(db, env.org, clock.now)
        nested.rollback()

    with db.begin_nested() as nested:
        db.execute(sa.update(Appointment).where(Appointment.id == first["id"]).values(status="cancelled"))
        with pytest.raises(AssertionError, match=r"cancelled appointment .* still claims"):
            check_invariants(db, env.org, clock.now)
        nested.rollback()

    with db.begin_nested() as nested:
        db.execute(sa.delete(Claim).where(Claim.appointment_id == first["id"], Claim.resource.like("room:%")))
        with pytest.raises(AssertionError, match=r"booked appointment .* claims"):
            check_invariants(db, env.org, clock.now)
        nested.rollback()
    check_invariants(db, env.org, clock.now)
