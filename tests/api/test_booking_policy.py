"""Channels and booking policies: what a booking frontend's key may do, and what a staff key may
override (issue 16)."""

from __future__ import annotations

from datetime import datetime

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
    assert listed["data"] == []
