"""A course plan held, confirmed, released and expired (issue 17): all or nothing, one expiry.

The world (tests/booking_world.py): one London clinic, its practitioner working 09:00-17:00
Monday to Saturday, the clock at Monday 4 January 2027 08:00 UTC (London is on GMT).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import icalendar
import pytest
import sqlalchemy as sa

from booking.services import course_plans, sweeps
from models import Appointment, Claim, CoursePlan, Hold, OutboxEvent

from ..booking_world import World, build_world, patient
from ..helpers import assert_problem

pytestmark = pytest.mark.usefixtures("clock")


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.get_json() if response.data else None


def course_of(w: World) -> dict:
    if "course" not in w.extra:
        w.extra["course"] = w.caller.make_course(w.patient["id"], w.microneedling["id"])
    return w.extra["course"]


def plan_path(w: World) -> str:
    return f"/v1/courses/{course_of(w)['id']}/plan"


def hold_plan(w: World, caller=None, **body) -> dict:
    return ok((caller or w.caller).post(plan_path(w), json={"sessions": 3, "hold": True, **body}))


def counts(w: World) -> dict[str, int]:
    with w.caller.app.extensions["db_write_sessions"]() as db:
        return {
            m.__name__: db.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (Appointment, Hold, Claim, CoursePlan, OutboxEvent)
        }


def events_of(w: World, type_: str) -> list[OutboxEvent]:
    with w.caller.app.extensions["db_write_sessions"]() as db:
        return list(db.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.id)))


@pytest.fixture
def w(admin, clock) -> World:
    world = build_world(admin, clock)
    world.consulted()
    return world


def test_hold_true_holds_every_session_with_one_expiry_and_source_course_plan(w, clock):
    held = hold_plan(w)
    assert held["id"].startswith("cpl_") and held["status"] == "held" and held["complete"] is True
    # One expiry for all: the booking policy's hold_minutes (10) from now, in the clinic's zone.
    assert held["expires_at"] == (clock.now + timedelta(minutes=10)).isoformat()
    sessions = held["sessions"]
    assert [s["number"] for s in sessions] == [1, 2, 3]
    for session in sessions:
        hold = session["hold"]
        assert hold["source"] == "course_plan" and hold["status"] == "active"
        assert hold["expires_at"] == held["expires_at"] and hold["course_id"] == course_of(w)["id"]
        assert session["slot"]["starts_at"] == hold["starts_at"] and session["appointment_id"] is None
        assert hold["course_plan_id"] == held["id"]
        assert ok(w.caller.get(f"/v1/holds/{hold['id']}"))["source"] == "course_plan"
    days = [datetime.fromisoformat(s["slot"]["starts_at"]).date() for s in sessions]
    assert all(28 <= (b - a).days <= 42 for a, b in pairwise(days))

    read = w.caller.get(f"/v1/course-plans/{held['id']}")
    assert ok(read) == held and read.headers["ETag"] == f'"{held["id"]}.1"'
    # The slots are taken: the same start for another patient is a 409.
    other = patient(w)
    taken = w.caller.post("/v1/holds", json=w.slot(patient_id=other["id"], starts_at=sessions[1]["slot"]["starts_at"]))
    assert_problem(taken, 409, "slot_unavailable")

    [event] = events_of(w, "course_plan.held")
    plan = event.payload["course_plan"]
    assert event.subject_id == held["id"] and plan["status"] == "held"
    assert [s["hold"]["id"] for s in plan["sessions"]] == [s["hold"]["id"] for s in sessions]
    assert all(s["tentative"] and s["hold"]["source"] == "course_plan" for s in plan["sessions"])


def test_hold_minutes_within_the_policys_bounds(w, clock):
    held = hold_plan(w, sessions=1, hold_minutes=30)
    assert held["expires_at"] == (clock.now + timedelta(minutes=30)).isoformat()
    ok(w.caller.delete(f"/v1/course-plans/{held['id']}"), 204)
    before = counts(w)
    too_long = w.caller.post(plan_path(w), json={"sessions": 1, "hold": True, "hold_minutes": 31})
    assert_problem(too_long, 422, "validation_error")
    assert "hold_minutes" in too_long.get_json()["errors"]
    assert counts(w) == before


def test_a_session_that_cannot_be_placed_holds_nothing_and_names_the_session(w):
    course_of(w)
    w.book(starts_at=w.at(day=50))  # Wednesday 24 February: the second session has nowhere to go
    before = counts(w)
    refused = w.caller.post(plan_path(w), json={"hold": True})
    assert_problem(refused, 409, "course_plan_incomplete")
    body = refused.get_json()
    assert body["session"] == 3  # the booking is session 1 of the course; 2 is placed, 3 is not
    assert body["reason"]["code"] == "interval_too_short" and body["reason"]["earliest_start"]
    assert counts(w) == before


def test_a_slot_taken_between_planning_and_holding_holds_nothing_and_names_what_it_collided_with(w, monkeypatch):
    """The plan is read first, the holds written after: a booking in between is met by the
    database's overlap guard on the second hold, and the first one goes too."""
    planned: dict = {}
    real = course_plans.plan_course

    def planned_once(*args, **kwargs):
        if "plan" not in planned:
            planned["plan"] = real(*args, **kwargs)
        return planned["plan"]

    monkeypatch.setattr(course_plans, "plan_course", planned_once)
    sessions = ok(w.caller.post(plan_path(w), json={"sessions": 3}))["sessions"]
    other = patient(w)
    intruder = w.book(patient_id=other["id"], starts_at=sessions[1]["slot"]["starts_at"])
    before = counts(w)
    refused = w.caller.post(plan_path(w), json={"sessions": 3, "hold": True})
    assert_problem(refused, 409, "slot_unavailable")
    body = refused.get_json()
    assert body["session"] == 2
    assert {c.get("appointment_id") for c in body["conflicts"]} == {intruder["id"]}
    assert counts(w) == before


def test_confirm_books_every_session_in_one_go(w):
    held = hold_plan(w)
    confirmed = ok(w.caller.post(f"/v1/course-plans/{held['id']}/confirm"))
    assert confirmed["status"] == "confirmed" and confirmed["confirmed_at"]
    booked = [s["appointment_id"] for s in confirmed["sessions"]]
    assert all(booked) and [s["hold"]["status"] for s in confirmed["sessions"]] == ["booked"] * 3
    for session, appointment_id in zip(held["sessions"], booked, strict=True):
        appointment = ok(w.caller.get(f"/v1/appointments/{appointment_id}"))
        assert appointment["status"] == "booked" and appointment["starts_at"] == session["slot"]["starts_at"]
        assert appointment["course_id"] == course_of(w)["id"] and appointment["course_plan_id"] == held["id"]
    assert_problem(w.caller.post(f"/v1/course-plans/{held['id']}/confirm"), 409, "invalid_transition")
    assert_problem(w.caller.delete(f"/v1/course-plans/{held['id']}"), 409, "invalid_transition")
    [event] = events_of(w, "course_plan.confirmed")
    assert [s["appointment_id"] for s in event.payload["course_plan"]["sessions"]] == booked
    assert len(events_of(w, "appointment.created")) == 3


def test_confirm_is_idempotent_with_a_key(w):
    held = hold_plan(w, sessions=2)
    headers = {"Idempotency-Key": "confirm-1"}
    first = w.caller.post(f"/v1/course-plans/{held['id']}/confirm", headers=headers)
    again = w.caller.post(f"/v1/course-plans/{held['id']}/confirm", headers=headers)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == ok(first)
    assert counts(w)["Appointment"] == 2


def test_hold_true_is_idempotent_with_a_key(w):
    headers = {"Idempotency-Key": "plan-1"}
    first = ok(w.caller.post(plan_path(w), json={"sessions": 2, "hold": True}, headers=headers))
    again = w.caller.post(plan_path(w), json={"sessions": 2, "hold": True}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first
    assert counts(w)["CoursePlan"] == 1 and counts(w)["Hold"] == 2
    reused = w.caller.post(plan_path(w), json={"sessions": 1, "hold": True}, headers=headers)
    assert_problem(reused, 422, "idempotency_key_reused")


def test_a_confirm_that_collides_books_nothing_and_names_the_session_and_what_it_met(w):
    """As if a writer slipped past the holds' claims (test_races does it to the booking path): the
    second session's claims are gone and another patient booked that time; the confirm is a 409."""
    held = hold_plan(w)
    second = held["sessions"][1]["hold"]
    with w.caller.app.extensions["db_write_sessions"]() as db:
        db.execute(sa.delete(Claim).where(Claim.hold_id == second["id"]))
        db.commit()
    other = patient(w)
    intruder = w.book(patient_id=other["id"], starts_at=second["starts_at"])
    before = counts(w)
    refused = w.caller.post(f"/v1/course-plans/{held['id']}/confirm")
    assert_problem(refused, 409, "slot_unavailable")
    assert refused.get_json()["session"] == 2
    assert intruder["id"] in {c.get("appointment_id") for c in refused.get_json()["conflicts"]}
    assert counts(w) == before
    still = ok(w.caller.get(f"/v1/course-plans/{held['id']}"))
    assert still["status"] == "held" and not any(s["appointment_id"] for s in still["sessions"])


def test_delete_releases_every_hold(w):
    held = hold_plan(w)
    plan_id = held["id"]
    assert_problem(
        w.caller.delete(f"/v1/course-plans/{plan_id}", headers={"If-Match": f'"{plan_id}.9"'}),
        412,
        "precondition_failed",
    )
    ok(w.caller.delete(f"/v1/course-plans/{plan_id}"), 204)
    released = ok(w.caller.get(f"/v1/course-plans/{plan_id}"))
    assert released["status"] == "released"
    assert [s["hold"]["status"] for s in released["sessions"]] == ["released"] * 3
    with w.caller.app.extensions["db_write_sessions"]() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Claim).where(Claim.hold_id.is_not(None))) == 0
    before = counts(w)
    ok(w.caller.delete(f"/v1/course-plans/{plan_id}"), 204)  # a second DELETE changes nothing
    assert counts(w) == before
    assert len(events_of(w, "course_plan.released")) == 1
    assert_problem(w.caller.post(f"/v1/course-plans/{plan_id}/confirm"), 409, "invalid_transition")
    # The slots are free again: the same plan holds once more.
    assert [s["slot"] for s in hold_plan(w)["sessions"]] == [s["slot"] for s in held["sessions"]]


def test_an_expired_plan_is_expired_by_the_sweep_and_confirms_no_more(w, clock, db):
    held = hold_plan(w, sessions=2)
    clock.advance(minutes=11)
    assert ok(w.caller.get(f"/v1/course-plans/{held['id']}"))["status"] == "expired"
    assert_problem(w.caller.post(f"/v1/course-plans/{held['id']}/confirm"), 410, "hold_expired")

    with w.caller.app.extensions["db_write_sessions"]() as session:
        due = sweeps.expired_plans(session, clock.now)
        assert due == [held["id"]]
        assert sweeps.expire_plans(session, due, clock.now) == 2  # the plan's two holds released
        assert sweeps.expire_plans(session, due, clock.now) == 0  # found again: nothing more
        session.commit()
    record = db.get(CoursePlan, held["id"])
    assert record is not None and record.status == "expired"
    assert {h["hold"]["status"] for h in ok(w.caller.get(f"/v1/course-plans/{held['id']}"))["sessions"]} == {"expired"}
    [event] = events_of(w, "course_plan.released")
    assert event.payload["course_plan"]["status"] == "expired"
    assert len(events_of(w, "hold.expired")) == 2
    ok(w.caller.delete(f"/v1/course-plans/{held['id']}"), 204)  # nothing left to release
    assert ok(w.caller.get(f"/v1/course-plans/{held['id']}"))["status"] == "expired"


def test_a_frontend_key_holds_within_its_policy(w, admin):
    frontend = admin.with_scopes("read", "book", channel="frontend")
    held = hold_plan(w, frontend, sessions=1)
    assert held["sessions"][0]["hold"]["source"] == "course_plan"
    ok(admin.patch(f"/v1/practitioners/{w.practitioner['id']}", json={"bookable_online": False}))
    refused = frontend.post(plan_path(w), json={"sessions": 1, "hold": True, "start": w.at(day=7)})
    assert_problem(refused, 409, "course_plan_incomplete")
    assert refused.get_json()["reason"]["code"] == "no_slot"


def test_unknown_and_foreign_plans_are_404(w, other):
    assert_problem(w.caller.get("/v1/course-plans/cpl_missing"), 404, "not_found")
    held = hold_plan(w, sessions=1)
    assert_problem(other.get(f"/v1/course-plans/{held['id']}"), 404, "not_found")
    assert_problem(other.post(f"/v1/course-plans/{held['id']}/confirm"), 404, "not_found")
    assert_problem(other.delete(f"/v1/course-plans/{held['id']}"), 404, "not_found")


def test_rescheduling_a_session_too_close_to_its_neighbours_names_them(w):
    held = hold_plan(w)
    first, second, third = (
        s["appointment_id"] for s in ok(w.caller.post(f"/v1/course-plans/{held['id']}/confirm"))["sessions"]
    )
    starts = {a: datetime.fromisoformat(ok(w.caller.get(f"/v1/appointments/{a}"))["starts_at"]) for a in (first, third)}
    # Ten days after the first session: too close to it (and far from the third).
    early = w.caller.patch(
        f"/v1/appointments/{second}", json={"starts_at": (starts[first] + timedelta(days=10)).isoformat()}
    )
    assert_problem(early, 422, "interval_too_short")
    assert [c["appointment_id"] for c in early.get_json()["conflicts"]] == [first]
    # Ten days before the third: too close to it the other way.
    late = w.caller.patch(
        f"/v1/appointments/{second}", json={"starts_at": (starts[third] - timedelta(days=10)).isoformat()}
    )
    assert_problem(late, 422, "interval_too_short")
    assert [c["appointment_id"] for c in late.get_json()["conflicts"]] == [third]
    assert ok(w.caller.get(f"/v1/appointments/{second}"))["status"] == "booked"


def test_fhir_shows_the_plans_sessions_as_appointments_sharing_an_identifier(w, client):
    held = hold_plan(w)
    token = f"urn:needlebook:course-plan|{held['id']}"
    bundle = ok(w.caller.get("/fhir/R4/Appointment", query_string={"identifier": token}))
    resources = [e["resource"] for e in bundle["entry"]]
    assert len(resources) == 3 and {r["status"] for r in resources} == {"pending"}
    for resource in resources:
        assert resource["identifier"] == [{"system": "urn:needlebook:course-plan", "value": held["id"]}]
        assert resource["participant"][-1]["status"] == "tentative"
    # The FHIR Slots of the same times are busy-tentative, as every live hold's.
    first = held["sessions"][0]["hold"]
    day = first["starts_at"][:10]
    schedule = ".".join(i.replace("_", "-", 1) for i in (w.practitioner["id"], w.clinic["id"]))
    slots = ok(
        w.caller.get(
            "/fhir/R4/Slot",
            query_string={
                "schedule": f"Schedule/{schedule}",
                "start": [f"ge{day}", f"le{day}T23:59:59+00:00"],
                "status": "busy-tentative",
            },
        )
    )
    assert [e["resource"]["id"] for e in slots["entry"]] == [first["id"].replace("_", "-", 1)]
    ok(w.caller.post(f"/v1/course-plans/{held['id']}/confirm"))
    bundle = ok(w.caller.get("/fhir/R4/Appointment", query_string={"identifier": held["id"]}))
    resources = [e["resource"] for e in bundle["entry"]]
    assert len(resources) == 3 and {r["status"] for r in resources} == {"booked"}
    assert {r["identifier"][0]["value"] for r in resources} == {held["id"]}


def test_the_ical_feed_shows_plan_holds_as_tentative(w, client, clock):
    held = hold_plan(w, sessions=2)
    feed = w.caller.create(
        "/v1/calendar-feeds", {"owner_type": "practitioner", "owner_id": w.practitioner["id"], "name": "Phone"}
    )
    response = client.get(feed["url"].removeprefix("http://localhost"))
    assert response.status_code == 200
    shown = {
        str(e["uid"]).removesuffix("@needlebook"): e for e in icalendar.Calendar.from_ical(response.data).walk("VEVENT")
    }
    for session in held["sessions"]:
        event = shown[session["hold"]["id"]]
        assert str(event["status"]) == "TENTATIVE" and "(held, course plan)" in str(event["summary"])


def test_a_plans_hold_is_booked_released_or_extended_only_with_its_plan(w):
    held = hold_plan(w, sessions=2)
    hold_id = held["sessions"][0]["hold"]["id"]
    before = counts(w)
    alone = w.caller.post("/v1/appointments", json={"hold_id": hold_id})
    assert_problem(alone, 409, "invalid_transition")
    assert held["id"] in alone.get_json()["detail"]
    assert_problem(w.caller.delete(f"/v1/holds/{hold_id}"), 409, "invalid_transition")
    assert_problem(w.caller.post(f"/v1/holds/{hold_id}/extend", json={}), 409, "invalid_transition")
    assert counts(w) == before
    ok(w.caller.delete(f"/v1/course-plans/{held['id']}"), 204)
    ok(w.caller.delete(f"/v1/holds/{hold_id}"), 204)  # released with its plan: a DELETE changes nothing


def test_hold_minutes_needs_hold(w):
    refused = w.caller.post(plan_path(w), json={"sessions": 1, "hold_minutes": 20})
    assert_problem(refused, 422, "validation_error")
    assert "hold_minutes" in refused.get_json()["errors"]


def test_a_deadlock_between_two_plans_is_the_409_of_a_slot_taken(w, monkeypatch):
    """PostgreSQL breaks a deadlock between two plans claiming the same resources in another
    order by aborting one of them (SQLSTATE 40P01): that one is told the slot was taken."""
    from booking.services import appointments

    class Deadlocked(Exception):
        sqlstate = course_plans.DEADLOCK

    placed = []
    real = appointments.place_hold

    def place_hold(*args, **kwargs):
        if placed:  # the second session's claims meet the other plan's
            raise sa.exc.OperationalError("INSERT INTO claims ...", {}, Deadlocked("deadlock detected"))
        placed.append(real(*args, **kwargs))
        return placed[-1]

    monkeypatch.setattr(appointments, "place_hold", place_hold)
    before = counts(w)
    refused = w.caller.post(plan_path(w), json={"sessions": 2, "hold": True})
    assert_problem(refused, 409, "slot_unavailable")
    assert refused.get_json()["session"] == 2
    assert counts(w) == before
