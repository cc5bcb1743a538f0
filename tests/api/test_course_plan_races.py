"""Course plans racing (issue 17): patients planning with hold into the same slots at once, and
two confirms of one plan, on a database of their own (committed, as in production), each request
in its own thread. Never a partial plan, never a double booking.

On PostgreSQL the plans are read side by side and meet at the claims' exclusion constraint;
SQLite serializes whole write transactions (BEGIN IMMEDIATE), so there the second plan is made
after the first and goes around it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from api import create_app
from booking.domain import clock as domain_clock
from models import Appointment, Claim, CoursePlan, Hold, make_engine

from ..booking_world import MONDAY, Clock, World, build_world, patient
from ..helpers import Caller, make_organization
from ..scaffold import fresh_database

PLANNERS = 3
ROUNDS = 4
SESSIONS = 3


@pytest.fixture
def committed(backend, tmp_path, monkeypatch):
    name, test_url = backend
    fake = Clock(MONDAY + timedelta(hours=8))
    monkeypatch.setattr(domain_clock, "now", fake)
    with fresh_database(name, test_url, tmp_path, "h17a_plan_races") as url:
        app = create_app({"DATABASE_URL": url, "TESTING": True, "RATE_LIMIT_ENABLED": False})
        world = build_world(make_organization(app, app.test_client(), "Plan Races"), fake)
        engine = make_engine(url)
        try:
            yield name, world, engine
        finally:
            engine.dispose()
            app.extensions["db_engine"].dispose()


def at_once(calls: list[Callable]) -> list:
    """Run every call in its own thread, released together."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def own_caller(w: World) -> Caller:
    """The world's key on a client of the thread's own."""
    caller = w.caller
    return Caller(caller.app, caller.app.test_client(), caller.token, caller.organization_id)


def overlapping_live_claims(db, now) -> int:
    """Two live claims on one resource whose ranges intersect: what a double booking is."""
    a, b = sa.orm.aliased(Claim), sa.orm.aliased(Claim)
    return db.scalar(
        sa.select(sa.func.count())
        .select_from(a)
        .join(b, sa.and_(a.resource == b.resource, a.id < b.id))
        .where(
            a.starts_at < b.ends_at,
            b.starts_at < a.ends_at,
            *(sa.or_(c.expires_at.is_(None), c.expires_at > now) for c in (a, b)),  # as Claim.live
        )
    )


def test_patients_planning_into_the_same_slots_at_once_never_leave_a_partial_plan(committed):
    backend, w, engine = committed
    statuses: Counter = Counter()
    for _ in range(ROUNDS):
        planners = [patient(w) for _ in range(PLANNERS)]
        courses = [w.caller.make_course(p["id"], w.microneedling["id"]) for p in planners]

        def plan(course):
            def call():
                response = own_caller(w).post(
                    f"/v1/courses/{course['id']}/plan", json={"sessions": SESSIONS, "hold": True}
                )
                return response.status_code, response.get_json()

            return call

        answers = at_once([plan(c) for c in courses])
        statuses.update(status for status, _ in answers)
        assert {status for status, _ in answers} <= {200, 409}, answers
        for status, body in answers:
            if status == 409:
                assert body["code"] == "slot_unavailable" and body["session"] in range(1, SESSIONS + 1), body
                assert body["conflicts"] or "concurrent" in body["detail"], body
        with engine.connect() as db:
            now = domain_clock.now()
            held = {body["id"] for status, body in answers if status == 200}
            assert (
                set(db.scalars(sa.select(CoursePlan.id).where(CoursePlan.patient_id.in_([p["id"] for p in planners]))))
                == held
            )
            for p in planners:  # all of a plan's sessions held, or none
                live = db.scalar(
                    sa.select(sa.func.count()).select_from(Hold).where(Hold.patient_id == p["id"], Hold.live(now))
                )
                assert live in (0, SESSIONS), (p["id"], live)
            assert overlapping_live_claims(db, now) == 0
        for plan_id in held:  # the slots are free again for the next round
            assert own_caller(w).delete(f"/v1/course-plans/{plan_id}").status_code == 204
    assert statuses[200] >= ROUNDS  # every round one plan at least is held
    if backend == "postgresql":  # the plans were read side by side: some lost at the constraint
        assert statuses[409] > 0, statuses


def test_two_confirms_racing_book_the_plan_once(committed):
    _, w, engine = committed
    for _ in range(ROUNDS):
        planner = patient(w)
        course = w.caller.make_course(planner["id"], w.microneedling["id"])
        held = w.caller.post(f"/v1/courses/{course['id']}/plan", json={"sessions": SESSIONS, "hold": True})
        assert held.status_code == 200, held.get_json()
        plan_id = held.get_json()["id"]

        def confirm(plan_id=plan_id):
            response = own_caller(w).post(f"/v1/course-plans/{plan_id}/confirm")
            return response.status_code, response.get_json()

        answers = at_once([confirm, confirm])
        assert sorted(status for status, _ in answers) == [200, 409], answers
        [refused] = [body for status, body in answers if status == 409]
        assert refused["code"] == "invalid_transition" and refused["current_status"] == "confirmed"
        with engine.connect() as db:
            booked = db.scalars(
                sa.select(Appointment.starts_at).where(
                    Appointment.patient_id == planner["id"], Appointment.status == "booked"
                )
            ).all()
            assert len(booked) == SESSIONS == len(set(booked))
            assert overlapping_live_claims(db, domain_clock.now()) == 0
        for appointment in (body for status, body in answers if status == 200):
            for session in appointment["sessions"]:  # free the practitioner for the next round
                cancel = own_caller(w).post(
                    f"/v1/appointments/{session['appointment_id']}/cancel", json={"reason": "clinic_request"}
                )
                assert cancel.status_code == 200, cancel.get_json()


def test_a_confirm_and_a_release_racing_leave_the_plan_whole_one_way_or_the_other(committed):
    _, w, engine = committed
    outcomes: Counter = Counter()
    for _ in range(ROUNDS):
        planner = patient(w)
        course = w.caller.make_course(planner["id"], w.microneedling["id"])
        held = w.caller.post(f"/v1/courses/{course['id']}/plan", json={"sessions": SESSIONS, "hold": True})
        assert held.status_code == 200, held.get_json()
        plan_id = held.get_json()["id"]

        def confirm(plan_id=plan_id):
            return "confirm", own_caller(w).post(f"/v1/course-plans/{plan_id}/confirm").status_code

        def release(plan_id=plan_id):
            return "release", own_caller(w).delete(f"/v1/course-plans/{plan_id}").status_code

        answers = dict(at_once([confirm, release]))
        with engine.connect() as db:
            status = db.scalar(sa.select(CoursePlan.status).where(CoursePlan.id == plan_id))
            booked = db.scalar(
                sa.select(sa.func.count())
                .select_from(Appointment)
                .where(Appointment.patient_id == planner["id"], Appointment.status == "booked")
            )
            live = db.scalar(
                sa.select(sa.func.count())
                .select_from(Hold)
                .where(Hold.patient_id == planner["id"], Hold.live(domain_clock.now()))
            )
        if status == "confirmed":  # the confirm went first: the release found it confirmed
            assert answers == {"confirm": 200, "release": 409} and (booked, live) == (SESSIONS, 0)
            for appointment_id in db_appointments(engine, planner["id"]):
                own_caller(w).post(f"/v1/appointments/{appointment_id}/cancel", json={"reason": "clinic_request"})
        else:  # the release went first: nothing booked, nothing held
            assert status == "released" and answers == {"confirm": 409, "release": 204}
            assert (booked, live) == (0, 0)
        outcomes[status] += 1
    assert sum(outcomes.values()) == ROUNDS


def db_appointments(engine, patient_id: str) -> list[str]:
    with engine.connect() as db:
        return list(
            db.scalars(
                sa.select(Appointment.id).where(Appointment.patient_id == patient_id, Appointment.status == "booked")
            )
        )
