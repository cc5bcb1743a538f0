"""Who did what to an appointment: the key (id and channel) that created, rescheduled and cancelled
it, a reschedule's reason, and the link both ways between the old and the new one (issue 16)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from booking.domain.errors import InvalidInput
from booking.services import appointments
from booking.services.appointments import SlotRequest
from models import Appointment, OutboxEvent
from tests.booking_world import patient
from tests.helpers import Caller, assert_problem


@pytest.fixture(autouse=True)
def _consulted(world):
    world.consulted()


@pytest.fixture
def staff_id(admin) -> str:
    return admin.get("/v1/api-keys").get_json()["data"][0]["id"]


def new_key(admin: Caller, channel: str | None = None) -> tuple[Caller, str]:
    """A key made through POST /v1/api-keys (no channel named: a frontend's), and its id."""
    body = {"name": "Booking widget", "scopes": ["read", "book"]}
    if channel:
        body["channel"] = channel
    key = admin.create("/v1/api-keys", body)
    return Caller(admin.app, admin.client, key["secret"], admin.organization_id), key["id"]


@pytest.fixture
def frontend(admin) -> tuple[Caller, str]:
    return new_key(admin)


def book(world, caller: Caller, day: int = 2, **overrides) -> dict:
    response = caller.post("/v1/appointments", json=world.slot(starts_at=world.at(day), **overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def payloads(db, type_: str, appointment_id: str) -> list[dict]:
    query = sa.select(OutboxEvent.payload).where(OutboxEvent.type == type_, OutboxEvent.subject_id == appointment_id)
    return list(db.scalars(query))


def version(response) -> int:
    """The version in the answer's ETag (`"<id>.<version>"`)."""
    return int(response.headers["ETag"].strip('"').rsplit(".", 1)[1])


def by(key_id: str, channel: str) -> dict:
    return {"key_id": key_id, "channel": channel}


def test_a_booking_records_the_key_that_made_it_staff_or_frontend(world, admin, frontend, staff_id, db):
    desk = book(world, admin)
    widget_caller, widget_id = frontend
    online = book(world, widget_caller, day=3, patient_id=patient(world)["id"])
    assert desk["created_by"] == by(staff_id, "staff")
    assert online["created_by"] == by(widget_id, "frontend")
    for shown in (desk, online):
        assert (shown["rescheduled_by"], shown["cancelled_by"], shown["reschedule_reason"]) == (None, None, None)
        assert (shown["rescheduled_from"], shown["rescheduled_to"]) == (None, None)
    # The read answers say the same, item and list, as does each one's event.
    assert admin.get(f"/v1/appointments/{online['id']}").get_json()["created_by"] == by(widget_id, "frontend")
    listed = {a["id"]: a["created_by"] for a in admin.get("/v1/appointments").get_json()["data"]}
    assert listed == {desk["id"]: by(staff_id, "staff"), online["id"]: by(widget_id, "frontend")}
    [desk_event] = payloads(db, "appointment.created", desk["id"])
    [online_event] = payloads(db, "appointment.created", online["id"])
    assert desk_event["appointment"]["created_by"] == by(staff_id, "staff")
    assert online_event["appointment"]["created_by"] == by(widget_id, "frontend")
    assert online_event["appointment"]["cancelled_by"] is None


def test_a_reschedule_records_who_and_why_on_the_old_and_links_both_ways(world, admin, frontend, staff_id, db):
    widget, widget_id = frontend
    old = book(world, admin)
    booked_version = version(admin.get(f"/v1/appointments/{old['id']}"))
    response = widget.patch(
        f"/v1/appointments/{old['id']}",
        json={"starts_at": world.at(2, hour=11), "reason": "The patient's train is late"},
    )
    assert response.status_code == 200, response.get_json()
    new = response.get_json()
    read = admin.get(f"/v1/appointments/{old['id']}")
    before = read.get_json()
    assert before["status"] == "cancelled" and before["cancel_reason"] == "rescheduled"
    assert before["rescheduled_to"] == new["id"] and new["rescheduled_from"] == old["id"]
    assert before["rescheduled_by"] == by(widget_id, "frontend")
    assert before["reschedule_reason"] == "The patient's train is late"
    assert before["cancelled_by"] == by(widget_id, "frontend")  # a reschedule cancels the old one
    assert before["created_by"] == by(staff_id, "staff")  # who booked it stays recorded
    assert version(read) == booked_version + 1  # one write of the old row, its link included
    # The new one was made by the key that moved it, and has not itself been moved.
    assert new["created_by"] == by(widget_id, "frontend")
    assert (new["rescheduled_to"], new["rescheduled_by"], new["reschedule_reason"]) == (None, None, None)
    assert admin.get(f"/v1/appointments/{new['id']}").get_json()["rescheduled_from"] == old["id"]
    # One event, on the new appointment, carrying the old one as it was left.
    [event] = payloads(db, "appointment.rescheduled", new["id"])
    assert event["appointment"]["id"] == new["id"]
    assert event["appointment"]["created_by"] == by(widget_id, "frontend")
    assert event["appointment"]["rescheduled_from"] == old["id"]
    previous = event["previous"]
    assert previous["id"] == old["id"] and previous["status"] == "cancelled"
    assert previous["rescheduled_to"] == new["id"]
    assert previous["rescheduled_by"] == by(widget_id, "frontend")
    assert previous["reschedule_reason"] == "The patient's train is late"
    assert previous["created_by"] == by(staff_id, "staff")
    assert payloads(db, "appointment.cancelled", old["id"]) == []


def test_a_reschedule_without_a_reason_records_the_key_and_no_reason(world, admin, staff_id):
    old = book(world, admin)
    new = admin.patch(f"/v1/appointments/{old['id']}", json={"room_id": world.rooms[1]["id"]}).get_json()
    before = admin.get(f"/v1/appointments/{old['id']}").get_json()
    assert (before["rescheduled_by"], before["reschedule_reason"]) == (by(staff_id, "staff"), None)
    assert before["rescheduled_to"] == new["id"]


def test_a_reason_of_500_characters_is_kept(world, admin):
    old = book(world, admin)
    reason = "x" * 500
    response = admin.patch(f"/v1/appointments/{old['id']}", json={"starts_at": world.at(2, hour=11), "reason": reason})
    assert response.status_code == 200, response.get_json()
    assert admin.get(f"/v1/appointments/{old['id']}").get_json()["reschedule_reason"] == reason


@pytest.mark.parametrize("reason", ["x" * 501, ""])
def test_a_reason_too_long_or_empty_is_a_422_and_nothing_is_written(world, admin, db, reason):
    old = book(world, admin)
    booked_version = version(admin.get(f"/v1/appointments/{old['id']}"))
    response = admin.patch(f"/v1/appointments/{old['id']}", json={"starts_at": world.at(2, hour=11), "reason": reason})
    body = assert_problem(response, 422, "validation_error")
    assert "reason" in str(body)
    read = admin.get(f"/v1/appointments/{old['id']}")
    after = read.get_json()
    assert (after["status"], version(read), after["rescheduled_to"]) == ("booked", booked_version, None)
    assert after["rescheduled_by"] is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Appointment)) == 1
    assert db.scalar(sa.select(sa.func.count()).where(OutboxEvent.type == "appointment.rescheduled")) == 0


def test_a_reason_alone_is_no_reschedule(world, admin):
    old = book(world, admin)
    response = admin.patch(f"/v1/appointments/{old['id']}", json={"reason": "because"})
    assert_problem(response, 422, "validation_error")


def test_the_service_bounds_the_reason_too(world, admin, app):
    """Whoever calls the service (not only the API) cannot store a reason past the column's bound."""
    old = book(world, admin)
    with app.extensions["db_write_sessions"]() as session, pytest.raises(InvalidInput):
        appointments.reschedule(
            session, admin.organization_id, old["id"], {"starts_at": world.at(2, hour=11)}, reason="y" * 501
        )


@pytest.mark.parametrize("who", ["staff", "frontend"])
def test_a_cancel_records_the_key_that_cancelled(world, admin, frontend, staff_id, db, who):
    caller, key_id = (admin, staff_id) if who == "staff" else frontend
    appointment = book(world, admin)
    response = caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_request"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["cancelled_by"] == by(key_id, who)
    assert admin.get(f"/v1/appointments/{appointment['id']}").get_json()["cancelled_by"] == by(key_id, who)
    [event] = payloads(db, "appointment.cancelled", appointment["id"])
    assert event["appointment"]["cancelled_by"] == by(key_id, who)
    assert event["appointment"]["created_by"] == by(staff_id, "staff")


def test_a_refused_cancel_records_nobody(world, admin, frontend):
    widget, _ = frontend
    appointment = book(world, admin)
    admin.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_request"})
    again = widget.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "other"})
    assert_problem(again, 409, "invalid_transition")
    assert admin.get(f"/v1/appointments/{appointment['id']}").get_json()["cancelled_by"]["channel"] == "staff"


def test_a_hold_booked_by_another_key_is_created_by_the_key_that_booked(world, admin, frontend, staff_id, db):
    widget, _ = frontend
    hold = widget.post("/v1/holds", json=world.slot(starts_at=world.at(2))).get_json()
    response = admin.post("/v1/appointments", json={"hold_id": hold["id"]})
    assert response.status_code == 201, response.get_json()
    booked = response.get_json()
    assert booked["hold_id"] == hold["id"]
    assert booked["created_by"] == by(staff_id, "staff")
    [event] = payloads(db, "appointment.created", booked["id"])
    assert event["appointment"]["created_by"] == by(staff_id, "staff")


def test_a_revoked_key_stays_named_on_what_it_did(world, admin):
    desk, desk_id = new_key(admin, "staff")
    appointment = book(world, desk)
    desk.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "clinic_request"})
    assert admin.delete(f"/v1/api-keys/{desk_id}").status_code == 204
    shown = admin.get(f"/v1/appointments/{appointment['id']}").get_json()
    assert shown["created_by"] == by(desk_id, "staff") and shown["cancelled_by"] == by(desk_id, "staff")


def test_no_key_no_record(world, admin, app):
    """The services called without a key (the scheduler, scripts) record nobody."""
    slot = world.slot(starts_at=world.at(2))
    request = SlotRequest(
        slot["clinic_id"],
        slot["practitioner_id"],
        slot["room_id"],
        slot["treatment_type_id"],
        slot["patient_id"],
        datetime.fromisoformat(slot["starts_at"]),
    )
    with app.extensions["db_write_sessions"]() as session:
        made = appointments.book(session, admin.organization_id, request)
        assert (made.created_by_key_id, made.created_by_channel, made.created_by) == (None, None, None)
        session.commit()
    assert admin.get(f"/v1/appointments/{made.id}").get_json()["created_by"] is None
