"""Patients' booking links: after the consultation the clinic sends the patient a personal link,
and the booking page books as that patient, so a returning patient books their microneedling
session online while a visitor without one is still a first visit (rule 1 is not weakened)."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from api.access_log import redact
from models import Appointment, BookingLink, Hold, Patient

from ..helpers import assert_problem
from .test_publishable_keys import NEW_PATIENT, publishable


def _link(admin, patient_id, **fields):
    return admin.create(f"/v1/patients/{patient_id}/booking-links", fields)


def _session_slot(world, **overrides):
    slot = world.slot(**{"starts_at": world.at(1, 10), **overrides})
    slot.pop("patient_id")
    return slot


def _counts(db):
    return tuple(db.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Appointment, Hold, Patient))


def test_a_booking_link_books_a_returning_patients_session_where_a_visitor_is_refused(admin, world, db):
    world.consulted()  # the world's patient had their consultation ten days ago
    pk = publishable(admin)
    assert_problem(pk.post("/v1/booking/holds", json=_session_slot(world)), 422, "consultation_required")

    link = _link(admin, world.patient["id"], treatment_type_id=world.microneedling["id"])
    token = link["secret"]
    assert token.startswith("bl_") and link["patient_id"] == world.patient["id"]
    assert link["expires_at"] == "2027-02-03T08:00:00+00:00"  # 30 days by default
    stored = db.get(BookingLink, link["id"])
    assert stored.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(db.execute(sa.select(BookingLink.__table__)).all())

    greeting = pk.get(f"/v1/booking/links/{token}")
    assert greeting.status_code == 200, greeting.get_json()
    shown = greeting.get_json()
    assert shown["first_name"] == world.patient["name"].split()[0]
    assert shown["treatment_type_id"] == world.microneedling["id"]
    assert not {"name", "email", "phone", "patient_id", "contraindications"} & set(shown)

    search = pk.get(
        "/v1/availability",
        query_string={
            "treatment_type_id": world.microneedling["id"],
            "clinic_id": world.clinic["id"],
            "start": world.at(1, 0),
            "end": world.at(2, 0),
            "patient_token": token,
        },
    ).get_json()
    assert search["reason"] is None and search["data"], search

    held = pk.post("/v1/booking/holds", json={**_session_slot(world), "patient_token": token})
    assert held.status_code == 201, held.get_json()
    assert db.get(Hold, held.get_json()["id"]).patient_id == world.patient["id"]
    # A hold placed with a link books with that link only: not as a new patient, not by its token alone.
    hold_token = held.get_json()["hold_token"]
    assert_problem(
        pk.post("/v1/booking/appointments", json={"hold_token": hold_token, "patient": NEW_PATIENT}),
        422,
        "validation_error",
    )
    booked = pk.post("/v1/booking/appointments", json={"hold_token": hold_token, "patient_token": token})
    assert booked.status_code == 201, booked.get_json()
    body = booked.get_json()
    assert body["appointment"]["patient_id"] == world.patient["id"]
    assert body["appointment"]["procedure_starts_at"] == "2027-01-05T10:30:00+00:00"  # after the numbing
    assert body["manage_token"].startswith("mt_") and body["pre_care"]
    row = db.get(Appointment, body["appointment"]["id"])
    assert (row.created_by_channel, row.course_id) == ("frontend", None)
    assert pk.post(f"/v1/manage/{body['manage_token']}/cancel", json={}).get_json()["status"] == "cancelled"


def test_every_clinical_rule_applies_for_the_links_patient(admin, world):
    """The interval: a second session a week after the first is refused for the link's patient."""
    world.consulted()
    world.book(starts_at=world.at(1, 10))
    pk = publishable(admin)
    token = _link(admin, world.patient["id"])["secret"]
    refused = pk.post(
        "/v1/booking/holds", json={**_session_slot(world, starts_at=world.at(8, 10)), "patient_token": token}
    )
    assert_problem(refused, 422, "interval_too_short")
    # And without a consultation on record the link books no session either.
    newcomer = world.new_patient(name="Nadia Karimi", email="nadia@example.com")
    other_token = _link(admin, newcomer["id"])["secret"]
    assert_problem(
        pk.post("/v1/booking/holds", json={**_session_slot(world), "patient_token": other_token}),
        422,
        "consultation_required",
    )


def test_a_wrong_expired_revoked_or_other_organizations_link_is_refused_and_writes_nothing(
    admin, other, world, db, clock
):
    world.consulted()
    pk = publishable(admin)
    expiring = _link(admin, world.patient["id"], expires_in_days=1)["secret"]
    revoked = _link(admin, world.patient["id"])
    rival_patient = other.make_patient(name="Rival Patient")
    rival = _link(other, rival_patient["id"])["secret"]
    assert admin.delete(f"/v1/patients/{world.patient['id']}/booking-links/{revoked['id']}").status_code == 204
    clock.advance(days=1, hours=1)
    before = _counts(db)
    slot = _session_slot(world, starts_at=world.at(3, 10))
    for token, status, code in (
        ("bl_wrong", 404, "not_found"),
        ("mt_not-a-link", 404, "not_found"),
        (rival, 404, "not_found"),
        (expiring, 410, "booking_link_ended"),
        (revoked["secret"], 410, "booking_link_ended"),
    ):
        assert_problem(pk.get(f"/v1/booking/links/{token}"), status, code)
        assert_problem(pk.post("/v1/booking/holds", json={**slot, "patient_token": token}), status, code)
        search = {"treatment_type_id": world.microneedling["id"], "start": world.at(3), "end": world.at(4)}
        assert_problem(pk.get("/v1/availability", query_string={**search, "patient_token": token}), status, code)
    assert _counts(db) == before  # no hold, booking or patient written
    ended = assert_problem(pk.get(f"/v1/booking/links/{expiring}"), 410, "booking_link_ended")
    assert ended["link_status"] == "expired"
    # A first-visit hold booked with a dead link registers nobody and books nothing.
    consultation = pk.post("/v1/booking/holds", json={**slot, "treatment_type_id": world.consultation["id"]}).get_json()
    before = _counts(db)
    assert_problem(
        pk.post("/v1/booking/appointments", json={"hold_token": consultation["hold_token"], "patient_token": expiring}),
        410,
        "booking_link_ended",
    )
    assert _counts(db) == before
    assert db.get(Hold, consultation["id"]).patient_id is None


def test_only_a_staff_key_issues_reads_or_revokes_links_and_a_pk_key_never(admin, world):
    pk = publishable(admin)
    frontend = admin.create("/v1/api-keys", {"name": "Widget", "scopes": ["read", "book"]})
    widget = admin.with_headers({"Authorization": f"Bearer {frontend['secret']}"})
    path = f"/v1/patients/{world.patient['id']}/booking-links"
    for caller in (pk, widget):
        assert_problem(caller.post(path, json={}), 403, "forbidden")
        assert_problem(caller.get(path), 403, "forbidden")
    link = _link(admin, world.patient["id"])
    assert_problem(pk.delete(f"{path}/{link['id']}"), 403, "forbidden")
    assert_problem(widget.delete(f"{path}/{link['id']}"), 403, "forbidden")
    assert [x["id"] for x in admin.get(path).get_json()["data"]] == [link["id"]]
    assert "secret" not in admin.get(f"{path}/{link['id']}").get_json()
    # Another patient's path does not name it.
    someone = world.new_patient(name="Someone Else", email="else@example.com")
    assert_problem(admin.delete(f"/v1/patients/{someone['id']}/booking-links/{link['id']}"), 404, "not_found")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 181}, "expires_in_days"),
        ({"treatment_type_id": "trt_none"}, "treatment_type_id"),
        ({"course_id": "crs_none"}, "course_id"),
    ],
)
def test_a_link_is_bounded_and_names_what_is_the_patients(admin, world, fields, field):
    body = assert_problem(
        admin.post(f"/v1/patients/{world.patient['id']}/booking-links", json=fields), 422, "validation_error"
    )
    assert field in body["errors"], body


def test_a_session_booked_with_a_link_counts_on_the_links_course(admin, world, db):
    world.consulted()
    course = admin.make_course(world.patient["id"], world.microneedling["id"])
    token = _link(admin, world.patient["id"], course_id=course["id"])["secret"]
    pk = publishable(admin)
    held = pk.post("/v1/booking/holds", json={**_session_slot(world), "patient_token": token}).get_json()
    booked = pk.post("/v1/booking/appointments", json={"hold_token": held["hold_token"], "patient_token": token})
    assert booked.status_code == 201, booked.get_json()
    assert db.get(Appointment, booked.get_json()["appointment"]["id"]).course_id == course["id"]


def test_the_access_log_masks_a_booking_links_token():
    assert redact("/v1/booking/links/bl_abc-DEF_1") == "/v1/booking/links/[redacted]"
    logged = redact("/v1/availability?patient_token=bl_abc&limit=5")
    assert logged == "/v1/availability?patient_token=[redacted]&limit=5"
