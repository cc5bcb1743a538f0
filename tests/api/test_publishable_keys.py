"""Publishable keys (`pk_...`): what a booking page in a browser may do with a key anyone can read.

They read the bookable clinics, treatment types and practitioners (public fields only), search
availability, hold, and book that hold with its hold token while registering the patient; every
other route is a 403, walked from the url_map. CORS comes from the key's origins.
"""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from models import Appointment, Hold, OutboxEvent, Patient

from ..helpers import Caller, assert_problem
from .test_scopes import RawCaller
from .test_tenancy import ROUTES, body_for, build_world, call

SITE = "https://book.example.com"
# What a booking page calls: everything else is refused to a publishable key.
BOOKING_PAGE_ROUTES = {
    ("GET", "/v1/booking/clinics"),
    ("GET", "/v1/booking/treatment-types"),
    ("GET", "/v1/booking/practitioners"),
    ("GET", "/v1/availability"),
    ("POST", "/v1/booking/holds"),
    ("POST", "/v1/booking/appointments"),
    ("GET", "/v1/booking/links/<link_token>"),
    ("GET", "/v1/manage/<token>"),
    ("POST", "/v1/manage/<token>/cancel"),
    ("POST", "/v1/manage/<token>/reschedule"),
}


def publishable(admin, origins=(SITE,), **fields) -> Caller:
    key = admin.create("/v1/api-keys", {"name": "Site", "kind": "publishable", "origins": list(origins), **fields})
    return Caller(admin.app, admin.client, key["secret"], admin.organization_id)


@pytest.fixture
def pk(admin):
    return publishable(admin)


def test_an_admin_issues_a_publishable_key_a_frontends_with_read_and_book(admin):
    key = admin.create(
        "/v1/api-keys", {"name": "Site", "kind": "publishable", "origins": [SITE, "http://localhost:8650"]}
    )
    assert key["secret"].startswith("pk_") and key["prefix"].startswith("pk_")
    assert (key["kind"], key["channel"], key["scopes"]) == ("publishable", "frontend", ["read", "book"])
    assert key["origins"] == [SITE, "http://localhost:8650"]
    assert admin.get(f"/v1/api-keys/{key['id']}").get_json()["origins"] == [SITE, "http://localhost:8650"]
    secret = admin.create("/v1/api-keys", {"name": "Server", "scopes": ["read"]})
    assert (secret["kind"], secret["origins"]) == ("secret", None) and secret["secret"].startswith("nbk_")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"kind": "publishable", "origins": [SITE], "scopes": ["read", "admin"]}, "scopes"),
        ({"kind": "publishable", "origins": [SITE], "channel": "staff"}, "channel"),
        ({"kind": "publishable"}, "origins"),
        ({"kind": "publishable", "origins": []}, "origins"),
        ({"kind": "publishable", "origins": ["https://book.example.com/path"]}, "origins"),
        ({"kind": "publishable", "origins": ["http://book.example.com"]}, "origins"),  # http: localhost only
        ({"kind": "publishable", "origins": ["book.example.com"]}, "origins"),
        ({"scopes": ["read"], "origins": [SITE]}, "origins"),  # a secret key lists none
        ({"origins": None}, "scopes"),  # a secret key names its scopes
    ],
)
def test_a_publishable_key_is_refused_admin_staff_and_anything_but_origins(admin, fields, field):
    body = assert_problem(admin.post("/v1/api-keys", json={"name": "Site", **fields}), 422, "validation_error")
    assert field in body["errors"], body


def test_a_publishable_key_is_refused_every_route_a_booking_page_does_not_need(admin, pk, client):
    """Every /v1 route of the url_map: a 403 for a pk key unless a booking page calls it."""
    ids = {**build_world(admin), "token": "mt_none"}
    refused = []
    for method, rule in ROUTES:
        response = call(pk, method, rule, ids)
        if (method, rule) in BOOKING_PAGE_ROUTES:
            assert response.status_code != 403, (method, rule, response.get_json())
        else:
            assert_problem(response, 403, "forbidden")
            assert "publishable key" in response.get_json()["detail"]
            refused.append((method, rule))
    assert {(m, r) for m, r in ROUTES} - set(refused) == BOOKING_PAGE_ROUTES
    assert len(refused) > 50
    # Read with a pk key, the world's patient and hold stay unread; the availability search takes no patient.
    assert_problem(pk.get("/v1/patients"), 403, "forbidden")
    assert_problem(pk.get(f"/v1/patients/{ids['patient_id']}"), 403, "forbidden")
    assert_problem(pk.get(f"/v1/holds/{ids['hold_id']}"), 403, "forbidden")
    search = body_for("GET", "/v1/availability", ids)
    assert pk.get("/v1/availability", query_string=search).status_code == 200
    with_patient = pk.get("/v1/availability", query_string={**search, "patient_id": ids["patient_id"]})
    assert_problem(with_patient, 403, "forbidden")


def test_the_booking_pages_reads_show_public_fields_of_what_is_bookable(admin, pk, world):
    hidden_clinic = admin.make_clinic(name="Staff only", booking_policy={"bookable_online": False})
    admin.patch(f"/v1/treatment-types/{world.review['id']}", json={"booking_policy": {"bookable_online": False}})
    admin.make_practitioner([world.clinic["id"]], name="Dr Offline", bookable_online=False)

    clinics = pk.get("/v1/booking/clinics").get_json()["data"]
    assert [c["id"] for c in clinics] == [world.clinic["id"]] and hidden_clinic["id"] != world.clinic["id"]
    assert set(clinics[0]) == {"id", "name", "timezone", "address", "opening_hours"}

    types = pk.get("/v1/booking/treatment-types").get_json()["data"]
    assert {t["id"] for t in types} == {world.consultation["id"], world.microneedling["id"]}
    assert set(types[0]) == {
        "id", "name", "kind", "numbing_minutes", "prep_minutes", "procedure_minutes", "aftercare_minutes",
        "allowed_areas",
    }  # fmt: skip

    practitioners = pk.get("/v1/booking/practitioners").get_json()["data"]
    assert practitioners == [
        {
            "id": world.practitioner["id"],
            "name": world.practitioner["name"],
            "clinic_ids": [world.clinic["id"]],
            "treatment_type_ids": sorted([world.consultation["id"], world.microneedling["id"]]),
        }
    ]


def _hold(pk, world, **overrides):
    slot = {k: v for k, v in world.slot(treatment_type_id=world.consultation["id"], **overrides).items()}
    slot.pop("patient_id")
    return pk.post("/v1/booking/holds", json=slot)


NEW_PATIENT = {"name": "Nour Haddad", "email": "nour@example.com", "phone": "020 7946 0000", "accept_terms": True}


def test_a_pk_hold_books_with_its_token_alone_registering_the_patient(admin, pk, world, db):
    held = _hold(pk, world, starts_at=world.at(1, 10))
    assert held.status_code == 201, held.get_json()
    hold = held.get_json()
    token = hold["hold_token"]
    assert token.startswith("ht_") and hold["expires_at"].endswith("+00:00")
    assert "patient_id" not in hold
    stored = db.get(Hold, hold["id"])
    assert stored.patient_id is None and stored.hold_token_digest == hashlib.sha256(token.encode()).hexdigest()

    # The slot is taken for everyone else while held.
    taken = admin.post(
        "/v1/appointments", json=world.slot(treatment_type_id=world.consultation["id"], starts_at=world.at(1, 10))
    )
    assert_problem(taken, 409, "slot_unavailable")
    # A secret key cannot book it by id: it has no patient; its token is what books it.
    assert_problem(admin.post("/v1/appointments", json={"hold_id": hold["id"]}), 422, "validation_error")
    assert_problem(
        pk.post("/v1/booking/appointments", json={"hold_token": "ht_wrong", "patient": NEW_PATIENT}), 404, "not_found"
    )

    booked = pk.post("/v1/booking/appointments", json={"hold_token": token, "patient": NEW_PATIENT})
    assert booked.status_code == 201, booked.get_json()
    body = booked.get_json()
    appointment = body["appointment"]
    assert appointment["status"] == "booked" and appointment["starts_at"] == "2027-01-05T10:00:00+00:00"
    assert body["manage_token"].startswith("mt_") and body["pre_care"] == []  # a consultation
    patient = db.get(Patient, appointment["patient_id"])
    assert (patient.name, patient.email, patient.phone) == ("Nour Haddad", "nour@example.com", "+442079460000")
    assert patient.terms_accepted_at is not None
    row = db.get(Appointment, appointment["id"])
    assert row.manage_token_digest == hashlib.sha256(body["manage_token"].encode()).hexdigest()
    event = db.scalar(sa.select(OutboxEvent).where(OutboxEvent.subject_id == appointment["id"]))
    assert event.type == "appointment.created" and event.payload["manage_token"] == body["manage_token"]

    again = pk.post("/v1/booking/appointments", json={"hold_token": token, "patient": NEW_PATIENT})
    assert_problem(again, 409, "invalid_transition")


@pytest.mark.parametrize(
    "patient, field",
    [
        ({**NEW_PATIENT, "accept_terms": False}, "accept_terms"),
        ({k: v for k, v in NEW_PATIENT.items() if k != "accept_terms"}, "accept_terms"),
        ({k: v for k, v in NEW_PATIENT.items() if k != "email"}, "email"),
        ({**NEW_PATIENT, "phone": "call me"}, "phone"),
    ],
)
def test_booking_a_pk_hold_needs_the_patients_details_and_consent_and_registers_nobody_otherwise(
    pk, world, db, patient, field
):
    token = _hold(pk, world, starts_at=world.at(1, 10)).get_json()["hold_token"]
    before = db.scalar(sa.select(sa.func.count(Patient.id)))
    body = assert_problem(
        pk.post("/v1/booking/appointments", json={"hold_token": token, "patient": patient}), 422, "validation_error"
    )
    assert field in body["errors"]["patient"], body
    assert db.scalar(sa.select(sa.func.count(Patient.id))) == before


def test_a_pk_hold_is_a_first_visit_a_session_needs_a_consultation_first(pk, world):
    held = pk.post(
        "/v1/booking/holds",
        json={k: v for k, v in world.slot(starts_at=world.at(1, 10)).items() if k != "patient_id"},
    )
    assert_problem(held, 422, "consultation_required")


def test_a_pk_hold_expires_and_its_token_then_books_nothing(pk, world, clock):
    token = _hold(pk, world, starts_at=world.at(1, 10)).get_json()["hold_token"]
    clock.advance(minutes=11)  # the default policy holds 10 minutes
    assert_problem(
        pk.post("/v1/booking/appointments", json={"hold_token": token, "patient": NEW_PATIENT}), 410, "hold_expired"
    )


def test_a_pk_hold_is_bound_by_the_frontend_policy(pk, world):
    assert_problem(_hold(pk, world, starts_at=world.at(1, 10, 5)), 422, "off_grid")
    assert_problem(_hold(pk, world, starts_at=world.at(0, 9)), 422, "too_soon")
    assert_problem(_hold(pk, world, starts_at=world.at(1, 10), override_reason="x"), 422, "validation_error")
    assert _hold(pk, world, starts_at=world.at(1, 10)).status_code == 201


def test_a_pk_key_from_an_origin_it_does_not_list_is_refused_and_gets_no_cors_grant(pk):
    listed = pk.get("/v1/booking/clinics", headers={"Origin": SITE})
    assert listed.status_code == 200
    assert listed.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in listed.headers.get("Vary", "")
    other = pk.get("/v1/booking/clinics", headers={"Origin": "https://evil.example.net"})
    body = assert_problem(other, 403, "origin_not_allowed")
    assert body["origin"] == "https://evil.example.net"
    assert "Access-Control-Allow-Origin" not in other.headers
    # No Origin: not a browser (a server, curl); the key is public anyway.
    assert pk.get("/v1/booking/clinics").status_code == 200
    # Refused before an Idempotency-Key is claimed, too.
    keyed = pk.post(
        "/v1/booking/holds", json={}, headers={"Origin": "https://evil.example.net", "Idempotency-Key": "k-1"}
    )
    assert_problem(keyed, 403, "origin_not_allowed")


def test_a_preflight_is_granted_to_an_origin_a_publishable_key_lists_on_a_booking_route_only(pk, client):
    ask = {
        "Origin": SITE,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    granted = client.options("/v1/booking/holds", headers=ask)
    assert granted.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in granted.headers["Access-Control-Allow-Methods"]
    assert set(granted.headers["Access-Control-Allow-Headers"].split(", ")) == {"authorization", "content-type"}
    assert "Access-Control-Allow-Origin" not in client.options("/v1/patients", headers=ask).headers
    stranger = client.options("/v1/booking/holds", headers={**ask, "Origin": "https://evil.example.net"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def test_the_server_wide_cors_list_does_not_widen_a_publishable_keys(backend, connection):
    from ..helpers import make_organization
    from .test_limits import build

    app = build(backend, connection, CORS_ORIGINS=["https://staff.example.com"], RATE_LIMIT_ENABLED=False)
    client = app.test_client()
    admin = make_organization(app, client, "Wide")
    pk = publishable(admin)
    staff_page = {"Origin": "https://staff.example.com"}
    assert (
        admin.get("/v1/clinics", headers=staff_page).headers["Access-Control-Allow-Origin"]
        == "https://staff.example.com"
    )
    refused = pk.get("/v1/booking/clinics", headers=staff_page)
    assert_problem(refused, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert pk.get("/v1/booking/clinics", headers={"Origin": SITE}).headers["Access-Control-Allow-Origin"] == SITE


def test_a_publishable_key_is_limited_per_key_and_per_client_address(backend, connection):
    from ..helpers import make_organization
    from .test_limits import build

    app = build(
        backend, connection, PUBLISHABLE_RATE_LIMIT="5 per minute", PUBLISHABLE_ADDRESS_RATE_LIMIT="3 per minute"
    )
    client = app.test_client()
    admin = make_organization(app, client, "Limited")
    pk = publishable(admin)

    def from_address(address):
        return pk.get("/v1/booking/clinics", environ_base={"REMOTE_ADDR": address})

    assert [from_address("198.51.100.1").status_code for _ in range(3)] == [200] * 3
    refused = from_address("198.51.100.1")
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    assert [from_address("198.51.100.2").status_code for _ in range(2)] == [200, 200]  # the key's 5th
    assert_problem(from_address("198.51.100.3"), 429, "rate_limited")  # the key's limit, whatever the address
    # A secret key of the same organization keeps the server-wide limit.
    assert admin.get("/v1/clinics", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 200


def test_a_revoked_publishable_key_is_a_401(admin, pk):
    key_id = admin.get("/v1/api-keys").get_json()["data"][-1]["id"]
    assert admin.delete(f"/v1/api-keys/{key_id}").status_code == 204
    assert_problem(pk.get("/v1/booking/clinics"), 401, "unauthorized")
    assert_problem(
        RawCaller(pk.client, {"Authorization": "Bearer pk_nope"}).get("/v1/booking/clinics"), 401, "unauthorized"
    )


def test_staff_see_a_pk_hold_without_a_patient_in_the_api_and_fhir(admin, pk, world):
    from booking.formats.fhir import fhir_id

    hold = _hold(pk, world, starts_at=world.at(1, 10)).get_json()
    shown = admin.get(f"/v1/holds/{hold['id']}").get_json()
    assert (shown["patient_id"], shown["status"], shown["source"]) == (None, "active", "frontend")
    read = admin.get(f"/fhir/R4/Appointment/{fhir_id(hold['id'])}")
    assert read.status_code == 200, read.get_json()
    assert [
        p["actor"].get("type") or p["actor"]["reference"].split("/")[0] for p in read.get_json()["participant"]
    ] == [
        "Practitioner",
        "Location",
    ]
    assert admin.get("/fhir/R4/Appointment", query_string={"date": "2027-01-05"}).status_code == 200


def test_a_national_number_is_read_in_the_booked_clinics_country_when_the_chain_spans_two(admin, pk, world, db):
    """The organization has a clinic in New York too: the patients API cannot read 020 7946 0000, but
    the patient booking London through its page writes it as people in Britain do."""
    admin.make_clinic(name="Manhattan", timezone="America/New_York")
    assert_problem(admin.post("/v1/patients", json={"name": "X", "phone": "020 7946 0000"}), 422, "validation_error")
    token = _hold(pk, world, starts_at=world.at(1, 10)).get_json()["hold_token"]
    booked = pk.post("/v1/booking/appointments", json={"hold_token": token, "patient": NEW_PATIENT})
    assert booked.status_code == 201, booked.get_json()
    assert db.get(Patient, booked.get_json()["appointment"]["patient_id"]).phone == "+442079460000"


def test_a_pk_search_is_a_first_visits_every_slot_it_offers_holds(pk, world):
    window = {"clinic_id": world.clinic["id"], "start": world.at(1, 0), "end": world.at(2, 0)}
    sessions = pk.get("/v1/availability", query_string={**window, "treatment_type_id": world.microneedling["id"]})
    assert sessions.status_code == 200, sessions.get_json()
    assert sessions.get_json()["data"] == [] and sessions.get_json()["reason"]["code"] == "consultation_required"
    held_at = []
    for _ in range(3):  # each search's first slot holds; the next search offers another
        search = {**window, "treatment_type_id": world.consultation["id"], "limit": 1}
        (slot,) = pk.get("/v1/availability", query_string=search).get_json()["data"]
        held = pk.post(
            "/v1/booking/holds", json={k: v for k, v in slot.items() if k not in ("procedure_starts_at", "ends_at")}
        )
        assert held.status_code == 201, held.get_json()
        held_at.append(slot["starts_at"])
    assert len(set(held_at)) == 3
