"""POST /v1/courses/{id}/plan: a course's remaining sessions planned into free slots, nothing written.

The world (tests/booking_world.py): one London clinic, its practitioner working 09:00-17:00
Monday to Saturday, the clock at Monday 4 January 2027 08:00 UTC (London is on GMT).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise

import sqlalchemy as sa

from models import Appointment, Claim, Hold

from ..booking_world import MONDAY, World, build_world
from ..helpers import assert_problem


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def plan(w: World, caller=None, **body) -> dict:
    course = w.extra.get("course") or w.caller.make_course(w.patient["id"], w.microneedling["id"])
    w.extra["course"] = course
    return ok((caller or w.caller).post(f"/v1/courses/{course['id']}/plan", json=body))


def local_day(session: dict) -> date:
    return datetime.fromisoformat(session["slot"]["starts_at"]).date()


def written(w: World) -> tuple[int, int, int]:
    with w.caller.app.extensions["db_write_sessions"]() as db:
        return tuple(db.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Appointment, Hold, Claim))


def test_three_sessions_28_to_42_days_apart_with_the_same_practitioner_and_nothing_written(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    before = written(w)
    body = plan(w, sessions=3)
    assert body["complete"] is True
    sessions = body["sessions"]
    assert [s["number"] for s in sessions] == [1, 2, 3]
    assert all(s["status"] == "planned" and s["reason"] is None for s in sessions)
    assert {s["slot"]["practitioner_id"] for s in sessions} == {w.practitioner["id"]}
    days = [local_day(s) for s in sessions]
    assert all(28 <= (b - a).days <= 42 for a, b in pairwise(days))
    # The earliest first session (two hours' notice: 10:00 Monday), then the same time of day.
    assert sessions[0]["slot"]["starts_at"] == "2027-01-04T10:00:00+00:00"
    assert {s["slot"]["starts_at"][11:16] for s in sessions} == {"10:00"}
    assert written(w) == before


def test_preferences_pick_the_weekday_and_time_of_day(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    body = plan(w, sessions=2, weekdays=[3], time_from="14:00", time_to="16:00", order="evening")
    first, second = (datetime.fromisoformat(s["slot"]["starts_at"]) for s in body["sessions"])
    assert first.isoweekday() == second.isoweekday() == 3
    # order=evening: the latest start of the window whose visit still ends by 17:00, then the same time.
    assert first.hour * 60 + first.minute >= 14 * 60 and first.time() == second.time()
    assert (second - first).days == 28


def test_a_session_that_cannot_be_placed_names_the_rule_and_its_earliest_start(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    w.extra["course"] = w.caller.make_course(w.patient["id"], w.microneedling["id"])
    w.book(starts_at=w.at(day=50))  # Wednesday 24 February: 28 days either side are closed
    body = plan(w)  # the course counts the booking: three sessions remain
    first, second, third = body["sessions"]
    assert body["complete"] is False
    assert first["status"] == "planned" and local_day(first) <= date(2027, 1, 4) + timedelta(days=22)
    assert second["status"] == "unplaced" and second["slot"] is None
    assert second["reason"]["code"] == "interval_too_short"
    assert second["reason"]["earliest_start"] == (MONDAY + timedelta(days=78)).isoformat()
    assert third["reason"] == {"code": "previous_not_placed", "detail": None, "earliest_start": None}


def test_the_consultation_expiring_mid_plan_bounds_the_first_session_only(admin, clock):
    w = build_world(admin, clock)
    w.consulted(day=-172)  # valid for 180 days: until Tuesday 12 January
    sessions = plan(w, sessions=3, start=w.at(day=6))["sessions"]
    assert [s["status"] for s in sessions] == ["planned"] * 3
    assert date(2027, 1, 10) <= local_day(sessions[0]) <= date(2027, 1, 12)
    assert local_day(sessions[2]) > date(2027, 3, 1)  # long after the consultation lapsed: not the first

    late = plan(w, sessions=1, start=w.at(day=9))["sessions"]  # Wednesday 13 January: lapsed
    assert late[0]["status"] == "unplaced" and late[0]["reason"]["code"] == "consultation_required"


def test_a_frontend_key_is_bound_by_the_booking_policy(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    ok(admin.patch("/v1/organization", json={"booking_policy": {"min_notice_minutes": 3 * 24 * 60}}))
    staff = plan(w, sessions=1)["sessions"][0]
    frontend = admin.with_scopes("read", "book", channel="frontend")
    online = plan(w, frontend, sessions=1)["sessions"][0]
    assert datetime.fromisoformat(online["slot"]["starts_at"]) >= clock.now + timedelta(days=3)
    assert datetime.fromisoformat(staff["slot"]["starts_at"]) >= clock.now + timedelta(days=3)

    ok(admin.patch(f"/v1/practitioners/{w.practitioner['id']}", json={"bookable_online": False}))
    blocked = plan(w, frontend, sessions=1)["sessions"][0]
    assert blocked["status"] == "unplaced" and blocked["reason"]["code"] == "no_slot"
    assert plan(w, sessions=1)["sessions"][0]["status"] == "planned"  # staff still may


def test_unknown_course_and_bad_preferences(admin, clock):
    w = build_world(admin, clock)
    assert_problem(admin.post("/v1/courses/crs_missing/plan", json={}), 404, "not_found")
    course = admin.make_course(w.patient["id"], w.microneedling["id"])
    bad = admin.post(f"/v1/courses/{course['id']}/plan", json={"weekdays": [0], "hold": True})
    assert_problem(bad, 422, "validation_error")
    bad = admin.post(f"/v1/courses/{course['id']}/plan", json={"time_from": "15:00", "time_to": "14:00"})
    assert_problem(bad, 422, "validation_error")


def test_the_cap_of_n_in_365_days_counts_the_planned_sessions(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    w.extra["course"] = admin.make_course(w.patient["id"], w.microneedling["id"], indication="ageing")
    first, second, third = plan(w, sessions=3)["sessions"]
    assert first["status"] == second["status"] == "planned"
    assert third["status"] == "unplaced" and third["reason"]["code"] == "course_complete"
    # Two in any 365 days: a third from the date 365 days after the first session.
    assert first["slot"]["starts_at"] == "2027-01-04T10:00:00+00:00"
    assert third["reason"]["earliest_start"] == "2028-01-04T00:00:00+00:00"


def test_a_window_past_the_horizon_is_too_far_ahead(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    sessions = plan(w, sessions=3, start=w.at(day=40))["sessions"]  # the third would be past day 90
    assert [s["status"] for s in sessions] == ["planned", "planned", "unplaced"]
    assert sessions[2]["reason"]["code"] == "too_far_ahead"


def test_a_complete_course_takes_no_plan(admin, clock):
    w = build_world(admin, clock)
    w.consulted()
    course = admin.make_course(w.patient["id"], w.microneedling["id"], max_sessions=1)
    w.book(starts_at=w.at(day=1), course_id=course["id"])
    assert_problem(admin.post(f"/v1/courses/{course['id']}/plan", json={}), 422, "course_complete")
