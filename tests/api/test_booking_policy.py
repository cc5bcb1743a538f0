"""Channels and booking policies: what a booking frontend's key may do, and what a staff key may
override (issue 16)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.helpers import Caller, assert_problem


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def frontend_of(admin: Caller, *scopes: str) -> Caller:
    """A key made the way an integrator gets one: POST /v1/api-keys, no channel named."""
    key = admin.create("/v1/api-keys", {"name": "Booking widget", "scopes": list(scopes or ("read", "book"))})
    return Caller(admin.app, admin.client, key["secret"], admin.organization_id)


@pytest.fixture
def frontend(admin):
    return frontend_of(admin)


@pytest.fixture(autouse=True)
def _consulted(world):
    """The patient had their consultation: the policy, not the consultation rule, is what answers."""
    world.consulted()


# What issue 16 measured: each of these succeeded for a frontend key.
def test_a_frontend_cannot_book_75_seconds_ahead(world, frontend, clock):
    clock.now = instant(world.at(hour=9, minute=58)).replace(second=45)
    response = frontend.post("/v1/appointments", json=world.slot(starts_at=world.at(hour=10)))
    body = assert_problem(response, 422, "too_soon")
    assert body["min_notice_minutes"] == 120
    assert instant(body["earliest_start"]) == instant(world.at(hour=12))


def test_a_frontend_cannot_book_118_days_ahead(world, frontend, clock):
    clock.now = instant(world.at(-2, hour=10))
    response = frontend.post("/v1/appointments", json=world.slot(starts_at=world.at(116, hour=10)))
    body = assert_problem(response, 422, "too_far_ahead")
    assert body["horizon_days"] == 90


def test_a_frontend_cannot_book_off_the_grid(world, frontend):
    response = frontend.post("/v1/appointments", json=world.slot(starts_at=world.at(1, hour=10, minute=10)))
    body = assert_problem(response, 422, "off_grid")
    assert body["grid_minutes"] == 15
    assert instant(body["earliest_start"]) == instant(world.at(1, hour=10, minute=15))


def test_a_frontend_cannot_record_a_past_consultation(world, frontend):
    response = frontend.post(
        f"/v1/patients/{world.patient['id']}/past-sessions",
        json={"treatment_type_id": world.consultation["id"], "performed_at": world.at(-20)},
    )
    assert_problem(response, 403, "forbidden")
    listed = world.caller.get(f"/v1/patients/{world.patient['id']}/past-sessions").get_json()
    assert [p["performed_at"] for p in listed["data"]] == ["2026-12-25T10:00:00+00:00"]  # the fixture's only


def test_the_first_key_is_staff_and_a_new_key_is_frontend(admin):
    keys = admin.get("/v1/api-keys").get_json()["data"]
    assert [k["channel"] for k in keys] == ["staff"]
    assert admin.create("/v1/api-keys", {"name": "Widget", "scopes": ["read"]})["channel"] == "frontend"
    assert admin.create("/v1/api-keys", {"name": "Desk", "scopes": ["read"], "channel": "staff"})["channel"] == "staff"


def test_a_staff_key_overrides_the_notice_with_a_reason_recorded(world, admin, clock):
    clock.now = instant(world.at(hour=9, minute=58))
    assert_problem(admin.post("/v1/appointments", json=world.slot()), 422, "too_soon")
    booked = world.book(override_reason="Patient is at the desk")
    key_id = admin.get("/v1/api-keys").get_json()["data"][0]["id"]
    assert (booked["override_key_id"], booked["override_reason"]) == (key_id, "Patient is at the desk")


def test_a_frontend_key_cannot_override(world, frontend):
    response = frontend.post("/v1/appointments", json=world.slot(override_reason="please"))
    assert_problem(response, 403, "forbidden")


def test_a_frontend_cannot_set_contraindications(world, frontend):
    response = frontend.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": []})
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("path", ["/v1/holds", "/v1/appointments"])
def test_every_timing_code_on_holds_and_bookings(world, admin, frontend, path):
    admin.patch("/v1/organization", json={"booking_policy": {"same_day_booking": False}})
    assert_problem(frontend.post(path, json=world.slot(starts_at=world.at(hour=11))), 422, "same_day_not_allowed")
    assert_problem(frontend.post(path, json=world.slot(starts_at=world.at(1, minute=5))), 422, "off_grid")
    assert_problem(frontend.post(path, json=world.slot(starts_at=world.at(95))), 422, "too_far_ahead")


def test_not_bookable_online_treatment_type_and_practitioner(world, admin, frontend):
    tt = world.microneedling["id"]
    admin.patch(f"/v1/treatment-types/{tt}", json={"booking_policy": {"bookable_online": False}})
    body = assert_problem(
        frontend.post("/v1/appointments", json=world.slot(starts_at=world.at(1))), 422, "not_bookable_online"
    )
    assert body["what"] == "treatment_type"
    search = {"treatment_type_id": tt, "clinic_id": world.clinic["id"], "start": world.at(1), "end": world.at(2)}
    assert frontend.get("/v1/availability", query_string=search).get_json()["data"] == []
    assert admin.get("/v1/availability", query_string=search).get_json()["data"]
    admin.patch(f"/v1/treatment-types/{tt}", json={"booking_policy": {"bookable_online": None}})
    admin.patch(f"/v1/practitioners/{world.practitioner['id']}", json={"bookable_online": False})
    body = assert_problem(
        frontend.post("/v1/holds", json=world.slot(starts_at=world.at(1))), 422, "not_bookable_online"
    )
    assert body["what"] == "practitioner"
    assert frontend.get("/v1/availability", query_string=search).get_json()["data"] == []


def test_the_policy_is_inherited_field_by_field(world, admin):
    admin.patch("/v1/organization", json={"booking_policy": {"min_notice_minutes": 60, "grid_minutes": 30}})
    admin.patch(f"/v1/clinics/{world.clinic['id']}", json={"booking_policy": {"grid_minutes": 20}})
    clinic = admin.get(f"/v1/clinics/{world.clinic['id']}").get_json()["booking_policy"]
    assert (clinic["min_notice_minutes"], clinic["grid_minutes"], clinic["horizon_days"]) == (60, 20, 90)
    tt = admin.get(f"/v1/treatment-types/{world.microneedling['id']}").get_json()["booking_policy"]
    assert (tt["min_notice_minutes"], tt["grid_minutes"]) == (60, 30)
    admin.patch(f"/v1/clinics/{world.clinic['id']}", json={"booking_policy": {"grid_minutes": None}})
    assert admin.get(f"/v1/clinics/{world.clinic['id']}").get_json()["booking_policy"]["grid_minutes"] == 30


def test_availability_offers_only_what_a_frontend_can_book(world, frontend, clock):
    clock.now = instant(world.at(hour=9, minute=7))
    search = {
        "treatment_type_id": world.microneedling["id"],
        "clinic_id": world.clinic["id"],
        "start": world.at(hour=9),
        "end": world.at(hour=13),
    }
    slots = frontend.get("/v1/availability", query_string=search).get_json()["data"]
    assert instant(slots[0]["starts_at"]) == instant(world.at(hour=11, minute=15))
    booked = frontend.post("/v1/appointments", json=world.slot(starts_at=slots[0]["starts_at"]))
    assert booked.status_code == 201, booked.get_json()


def test_the_grid_keeps_to_the_local_clock_on_a_dst_day(world, admin, frontend, clock):
    # Sunday 28 March 2027 London springs forward; Monday 29 March local 10:00 BST is 09:00 UTC.
    admin.patch("/v1/organization", json={"booking_policy": {"grid_minutes": 60}})
    clock.now = datetime.fromisoformat("2027-03-27T08:00:00+00:00")
    search = {
        "treatment_type_id": world.review["id"],
        "clinic_id": world.clinic["id"],
        "start": "2027-03-29T00:00:00+01:00",
        "end": "2027-03-29T12:00:00+01:00",
    }
    slots = frontend.get("/v1/availability", query_string=search).get_json()["data"]
    assert slots and all(s["starts_at"].endswith(":00:00+01:00") for s in slots)
    assert_problem(
        frontend.post(
            "/v1/holds", json=world.slot(treatment_type_id=world.review["id"], starts_at="2027-03-29T09:30:00+00:00")
        ),
        422,
        "off_grid",
    )


def test_a_frontend_cannot_cancel_or_move_inside_the_cut_off(world, frontend, clock):
    booked = world.book(starts_at=world.at(1))
    clock.now = instant(world.at(0, hour=11))  # 23 hours before
    cancel = frontend.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_request"})
    assert_problem(cancel, 422, "cancellation_window_passed")
    move = frontend.patch(f"/v1/appointments/{booked['id']}", json={"starts_at": world.at(2)})
    assert_problem(move, 422, "cancellation_window_passed")
    assert (
        world.caller.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_request"}).status_code
        == 200
    )


def test_daily_limit_on_bookings_and_availability(world, admin, frontend):
    admin.patch("/v1/organization", json={"booking_policy": {"max_sessions_per_practitioner_per_day": 1}})
    world.book(starts_at=world.at(1), treatment_type_id=world.review["id"])
    other = world.slot(starts_at=world.at(1, hour=14), treatment_type_id=world.review["id"])
    body = assert_problem(frontend.post("/v1/appointments", json=other), 422, "daily_limit_reached")
    assert body["max_sessions_per_practitioner_per_day"] == 1
    search = {
        "treatment_type_id": world.review["id"],
        "clinic_id": world.clinic["id"],
        "start": world.at(1, hour=0),
        "end": world.at(2, hour=0),
    }
    assert frontend.get("/v1/availability", query_string=search).get_json()["data"] == []


def test_holds_are_sized_and_extended_once(world, frontend, clock):
    assert_problem(
        frontend.post("/v1/holds", json={**world.slot(starts_at=world.at(1)), "hold_minutes": 31}),
        422,
        "validation_error",
    )
    hold = frontend.create("/v1/holds", {**world.slot(starts_at=world.at(1)), "hold_minutes": 5})
    assert instant(hold["expires_at"]) == clock.now + timedelta(minutes=5)
    clock.advance(minutes=4)
    extended = frontend.post(f"/v1/holds/{hold['id']}/extend", json={"hold_minutes": 20})
    assert extended.status_code == 200, extended.get_json()
    assert instant(extended.get_json()["expires_at"]) == clock.now + timedelta(minutes=20)
    assert_problem(frontend.post(f"/v1/holds/{hold['id']}/extend", json={}), 409, "invalid_transition")


def test_a_policy_shorter_notice_or_longer_horizon_than_the_deployments_is_searched(world, admin, frontend, clock):
    """The environment's notice (120 minutes) and horizon (90 days) are only the defaults' defaults:
    a window inside them offers what the organization's own policy lets a frontend book."""
    admin.patch("/v1/organization", json={"booking_policy": {"min_notice_minutes": 30, "horizon_days": 200}})
    clock.now = instant(world.at(hour=9))
    soon = {
        "treatment_type_id": world.review["id"],
        "clinic_id": world.clinic["id"],
        "start": world.at(hour=9),
        "end": world.at(hour=10, minute=30),
    }
    slots = frontend.get("/v1/availability", query_string=soon).get_json()["data"]
    assert slots and instant(slots[0]["starts_at"]) == instant(world.at(hour=9, minute=30))
    far = {**soon, "start": world.at(150, hour=9), "end": world.at(150, hour=12)}
    slots = frontend.get("/v1/availability", query_string=far).get_json()["data"]
    assert slots, "day 150 is inside the policy's 200-day horizon"
    for slot in (slots[0],):
        body = {k: slot[k] for k in ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")}
        booked = frontend.post("/v1/appointments", json={**body, "patient_id": world.patient["id"]})
        assert booked.status_code == 201, booked.get_json()
