"""Patients' manage links: GET /v1/manage/{token} shows the booking, its pre-care and the policy;
cancel and reschedule act within the frontend policy; the link ends with the booking (410)."""

from __future__ import annotations

import sqlalchemy as sa

from models import Appointment, OutboxEvent

from ..booking_world import patient
from ..helpers import assert_problem
from .test_publishable_keys import NEW_PATIENT, publishable


def _page_booking(pk, world, day=3, hour=10):
    """A consultation booked through the booking page (Thursday 7 January 2027 at 10:00 London)."""
    slot = {
        k: v for k, v in world.slot(treatment_type_id=world.consultation["id"], starts_at=world.at(day, hour)).items()
    }
    slot.pop("patient_id")
    held = pk.post("/v1/booking/holds", json=slot)
    assert held.status_code == 201, held.get_json()
    booked = pk.post(
        "/v1/booking/appointments", json={"hold_token": held.get_json()["hold_token"], "patient": NEW_PATIENT}
    )
    assert booked.status_code == 201, booked.get_json()
    return booked.get_json()


def test_the_manage_link_shows_the_booking_its_pre_care_and_the_policy(admin, world):
    pk = publishable(admin)
    booked = _page_booking(pk, world)
    shown = pk.get(f"/v1/manage/{booked['manage_token']}")
    assert shown.status_code == 200, shown.get_json()
    assert shown.headers["ETag"].startswith(f'"{booked["appointment"]["id"]}.')
    body = shown.get_json()
    assert body["appointment"]["id"] == booked["appointment"]["id"]
    assert body["appointment"]["treatment_type_name"] == world.consultation["name"]
    assert body["appointment"]["practitioner_name"] == world.practitioner["name"]
    assert body["clinic"]["timezone"] == "Europe/London" and "booking_policy" not in body["clinic"]
    assert body["policy"]["cancellation_cutoff_hours"] == 24
    assert (body["changeable_until"], body["changeable"]) == ("2027-01-06T10:00:00+00:00", True)
    assert body["pre_care"] == []  # a consultation

    # A session's link carries the session's pre-care (rule 10); a staff booking has a link too.
    world.consulted()
    session = world.book(starts_at=world.at(4, 10))
    assert session["manage_token"].startswith("mt_")
    assert "no makeup" in " ".join(admin.get(f"/v1/manage/{session['manage_token']}").get_json()["pre_care"])
    assert "manage_token" not in admin.get(f"/v1/appointments/{session['id']}").get_json()


def test_a_cancel_through_the_link_is_the_patients_and_ends_the_link(admin, world, db):
    pk = publishable(admin)
    booked = _page_booking(pk, world)
    token = booked["manage_token"]
    cancelled = pk.post(f"/v1/manage/{token}/cancel", json={"note": "Away that week"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cancelled.get_json()["status"] == "cancelled"
    row = db.get(Appointment, booked["appointment"]["id"])
    assert (row.cancel_reason, row.cancel_note, row.cancelled_by_channel) == (
        "patient_request",
        "Away that week",
        "frontend",
    )
    body = assert_problem(pk.get(f"/v1/manage/{token}"), 410, "manage_link_ended")
    assert body["appointment_status"] == "cancelled"
    assert_problem(pk.post(f"/v1/manage/{token}/cancel", json={}), 410, "manage_link_ended")
    assert_problem(
        pk.post(f"/v1/manage/{token}/reschedule", json={"starts_at": world.at(4, 10)}), 410, "manage_link_ended"
    )


def test_inside_the_cut_off_the_link_shows_but_neither_cancels_nor_moves(admin, world, clock):
    pk = publishable(admin)
    token = _page_booking(pk, world)["manage_token"]
    clock.advance(days=2, hours=3)  # Wednesday 6 January 11:00: 23 hours before
    shown = pk.get(f"/v1/manage/{token}").get_json()
    assert shown["changeable"] is False
    body = assert_problem(pk.post(f"/v1/manage/{token}/cancel", json={}), 422, "cancellation_window_passed")
    assert "detail" in body
    assert_problem(
        pk.post(f"/v1/manage/{token}/reschedule", json={"starts_at": world.at(4, 10)}),
        422,
        "cancellation_window_passed",
    )
    # A staff key calling the link is the patient too: the cut-off binds it (the front desk cancels by id).
    assert_problem(admin.post(f"/v1/manage/{token}/cancel", json={}), 422, "cancellation_window_passed")
    assert pk.get(f"/v1/manage/{token}").status_code == 200


def test_a_reschedule_through_the_link_gives_a_new_link_and_ends_the_old(admin, world, db):
    pk = publishable(admin)
    booked = _page_booking(pk, world)
    old = booked["manage_token"]
    assert_problem(pk.post(f"/v1/manage/{old}/reschedule", json={"starts_at": world.at(4, 10, 5)}), 422, "off_grid")
    moved = pk.post(f"/v1/manage/{old}/reschedule", json={"starts_at": world.at(4, 11)})
    assert moved.status_code == 200, moved.get_json()
    body = moved.get_json()
    new = body["manage_token"]
    assert new.startswith("mt_") and new != old
    assert body["appointment"]["starts_at"] == "2027-01-08T11:00:00+00:00"
    assert assert_problem(pk.get(f"/v1/manage/{old}"), 410, "manage_link_ended")["appointment_status"] == "cancelled"
    assert pk.get(f"/v1/manage/{new}").get_json()["appointment"]["id"] == body["appointment"]["id"]
    event = db.scalar(sa.select(OutboxEvent).where(OutboxEvent.type == "appointment.rescheduled"))
    assert event.payload["manage_token"] == new and event.payload["previous"]["id"] == booked["appointment"]["id"]
    replacement = db.get(Appointment, body["appointment"]["id"])
    assert (replacement.rescheduled_from, replacement.created_by_channel) == (booked["appointment"]["id"], "frontend")


def test_a_reschedule_through_the_link_keeps_every_clinical_rule(admin, world):
    """The world's patient has had a session: moving a second one closer than 28 days is refused."""
    world.consulted()
    world.book(starts_at=world.at(1, 10))
    second = world.book(starts_at=world.at(30, 10))
    pk = publishable(admin)
    refused = pk.post(f"/v1/manage/{second['manage_token']}/reschedule", json={"starts_at": world.at(15, 10)})
    assert_problem(refused, 422, "interval_too_short")


def test_the_link_ends_when_the_visit_happens(admin, world, clock):
    world.consulted()
    session = world.book(starts_at=world.at(1, 10))
    clock.advance(days=1, hours=1, minutes=30)  # 09:30 on the day
    assert admin.post(f"/v1/appointments/{session['id']}/check-in").status_code == 200
    assert (
        assert_problem(admin.get(f"/v1/manage/{session['manage_token']}"), 410, "manage_link_ended")[
            "appointment_status"
        ]
        == "checked_in"
    )


def test_a_link_of_another_organization_or_no_booking_is_a_404(admin, other, world):
    token = _page_booking(publishable(admin), world)["manage_token"]
    assert_problem(other.get(f"/v1/manage/{token}"), 404, "not_found")
    assert_problem(publishable(other).post(f"/v1/manage/{token}/cancel", json={}), 404, "not_found")
    assert_problem(admin.get("/v1/manage/mt_nothing"), 404, "not_found")
    assert_problem(admin.get("/v1/manage/ht_not-a-manage-token"), 404, "not_found")
    assert admin.get(f"/v1/manage/{token}").status_code == 200


def test_only_the_digest_of_a_manage_token_is_stored(admin, world, db):
    token = _page_booking(publishable(admin), world)["manage_token"]
    for table in ("appointments", "holds", "patients", "api_keys"):
        rows = db.execute(sa.text(f"SELECT * FROM {table}")).all()
        assert token not in repr(rows), table


def test_two_patients_book_the_same_page_and_neither_reads_the_other(admin, world):
    pk = publishable(admin)
    first = _page_booking(pk, world, day=3, hour=10)
    second = _page_booking(pk, world, day=3, hour=12)
    assert first["appointment"]["patient_id"] != second["appointment"]["patient_id"]
    assert_problem(pk.get(f"/v1/appointments/{first['appointment']['id']}"), 403, "forbidden")
    assert_problem(pk.get(f"/v1/patients/{first['appointment']['patient_id']}"), 403, "forbidden")
    assert patient(world)  # the world still books staff-side
