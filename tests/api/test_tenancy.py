"""Tenant isolation: another organization's objects behave exactly as if they did not exist.

The routes come from the app's url_map, so a new route is covered (or fails until it gets
a body in BODIES) without anyone remembering to add it here.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from api import create_app

from ..helpers import assert_problem

ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
NOT_VIEWS = {"HEAD", "OPTIONS"}


def is_feed(rule: str) -> bool:
    """iCalendar feeds are read with a feed token, not an API key (tests/api/test_calendars.py)."""
    return rule.endswith("/calendar.ics")


def v1_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every /v1 route read with an API key, e.g. ('PATCH', '/v1/clinics/<clinic_id>')."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1/") and not is_feed(rule.rule)
        for method in rule.methods - NOT_VIEWS
    )


# Collection-time route list; test_route_list_is_the_apps checks it against the fixture app.
ROUTES = v1_routes(create_app({"DATABASE_URL": "sqlite://"}, sessionmaker=sessionmaker()))
ITEM_ROUTES = [(m, r) for m, r in ROUTES if ARGUMENT.search(r)]
# Searches are not collections of stored objects; they get their own tenancy test.
SEARCHES = {"/v1/availability", "/v1/clinics/<clinic_id>/day-sheet"}
SINGLETONS = {"/v1/organization"}  # the key's own organization: one object, never another's
LIST_ROUTES = [r for m, r in ROUTES if m == "GET" and not ARGUMENT.search(r) and r not in SEARCHES | SINGLETONS]

EXTERNAL_ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:x@t\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20300107T090000Z\r\nDTEND:20300107T100000Z\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
# A valid body for every write route, so a request gets past argument parsing and it is the
# organization (or scope) check that answers. '{name}' is replaced by the id of that name.
HOURS = [{"clinic_id": "{clinic_id}", "weekday": 0, "start": "09:00", "end": "17:00"}]


def _monday(weeks: int) -> str:
    """14:00 UTC on a Monday `weeks` weeks after next Monday: inside the world's hours."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday() + 7 * weeks)
    return datetime.combine(monday, time(14), UTC).isoformat()


# The world's appointment, hold and a free slot, each 5+ weeks apart (the 28-day interval rule);
# a booking page's hold (no patient: no interval) the week after the appointment.
APPOINTMENT_AT, HOLD_AT, FREE_AT, PAGE_HOLD_AT = _monday(1), _monday(6), _monday(11), _monday(2)
SLOT = {
    "clinic_id": "{clinic_id}",
    "practitioner_id": "{practitioner_id}",
    "room_id": "{room_id}",
    "treatment_type_id": "{treatment_type_id}",
    "patient_id": "{patient_id}",
}
BODIES = {
    ("POST", "/v1/clinics"): {"name": "Leeds", "timezone": "Europe/London"},
    ("POST", "/v1/practitioners"): {"name": "Dr New", "clinic_ids": ["{clinic_id}"]},
    ("POST", "/v1/treatment-types"): {"name": "Consult", "kind": "consultation"},
    ("POST", "/v1/patients"): {"name": "New Patient"},
    ("POST", "/v1/api-keys"): {"name": "Kiosk", "scopes": ["read"]},
    ("POST", "/v1/webhooks"): {"url": "https://93.184.215.14/hooks", "event_types": ["hold.expired"]},
    ("PATCH", "/v1/webhooks/<webhook_id>"): {"url": "https://93.184.215.14/hijacked"},
    ("POST", "/v1/webhooks/<webhook_id>/rotate-secret"): None,
    ("POST", "/v1/webhooks/<webhook_id>/test"): None,
    ("POST", "/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver"): None,
    ("POST", "/v1/calendar-feeds"): {"owner_type": "clinic", "owner_id": "{clinic_id}"},
    ("POST", "/v1/practitioners/<practitioner_id>/external-calendars"): {"name": "Planted", "ics": EXTERNAL_ICS},
    ("PATCH", "/v1/external-calendars/<calendar_id>"): {"name": "Hijacked"},
    ("PATCH", "/v1/clinics/<clinic_id>"): {"name": "Hijacked"},
    ("POST", "/v1/clinics/<clinic_id>/rooms"): {"name": "Planted", "capabilities": ["needling"]},
    ("PATCH", "/v1/rooms/<room_id>"): {"name": "Hijacked"},
    ("PATCH", "/v1/practitioners/<practitioner_id>"): {"name": "Hijacked"},
    ("PUT", "/v1/practitioners/<practitioner_id>/working-hours"): HOURS,
    ("POST", "/v1/practitioners/<practitioner_id>/time-off"): {
        "starts_at": "2030-02-04T09:00:00+00:00",
        "ends_at": "2030-02-04T17:00:00+00:00",
        "reason": "x",
    },
    ("PATCH", "/v1/treatment-types/<treatment_type_id>"): {"name": "Hijacked"},
    ("PATCH", "/v1/patients/<patient_id>"): {"name": "Hijacked"},
    ("POST", "/v1/patients/<patient_id>/booking-links"): {"expires_in_days": 7},
    ("POST", "/v1/patients/<patient_id>/courses"): {
        "treatment_type_id": "{treatment_type_id}",
        "indication": "acne_scars",
    },
    ("PATCH", "/v1/courses/<course_id>"): {"notes": "Hijacked"},
    ("POST", "/v1/courses/<course_id>/plan"): {"sessions": 1},
    ("POST", "/v1/course-plans/<plan_id>/confirm"): None,
    ("POST", "/v1/patients/<patient_id>/past-sessions"): {
        "treatment_type_id": "{treatment_type_id}",
        "performed_at": "2020-01-06T10:00:00+00:00",
    },
    ("POST", "/v1/holds"): {**SLOT, "starts_at": FREE_AT},
    ("POST", "/v1/waitlist"): {
        "patient_id": "{patient_id}",
        "treatment_type_id": "{treatment_type_id}",
        "clinic_ids": ["{clinic_id}"],
        "end": FREE_AT,
    },
    ("POST", "/v1/holds/<hold_id>/extend"): {"hold_minutes": 15},
    ("PATCH", "/v1/organization"): {"booking_policy": {"min_notice_minutes": 60}},
    ("POST", "/v1/appointments"): {**SLOT, "starts_at": FREE_AT},
    ("PATCH", "/v1/appointments/<appointment_id>"): {"starts_at": FREE_AT},
    ("POST", "/v1/appointments/<appointment_id>/cancel"): {"reason": "patient_request"},
    ("GET", "/v1/availability"): {
        "treatment_type_id": "{treatment_type_id}",
        "clinic_id": "{clinic_id}",
        "start": FREE_AT,
        "end": FREE_AT.replace("T14:00", "T23:00"),
    },
    ("GET", "/v1/clinics/<clinic_id>/day-sheet"): {"date": APPOINTMENT_AT[:10]},
    # A booking page's calls: a hold for a visitor (a consultation: a first visit's first booking),
    # booking the world's page hold with its token, and the world appointment's manage link.
    ("POST", "/v1/booking/holds"): {
        **{k: v for k, v in SLOT.items() if k not in ("patient_id", "treatment_type_id")},
        "treatment_type_id": "{consultation_id}",
        "starts_at": FREE_AT,
    },
    ("POST", "/v1/booking/appointments"): {
        "hold_token": "{hold_token}",
        "patient": {"name": "Nour Haddad", "email": "nour@example.com", "accept_terms": True},
    },
    ("POST", "/v1/manage/<token>/cancel"): {},
    ("POST", "/v1/manage/<token>/reschedule"): {"starts_at": FREE_AT},
    ("POST", "/v1/appointments/<appointment_id>/check-in"): None,  # no body
    ("POST", "/v1/appointments/<appointment_id>/complete"): None,
    ("POST", "/v1/appointments/<appointment_id>/no-show"): None,
}


def fill(rule: str, ids: dict) -> str:
    return ARGUMENT.sub(lambda m: ids[m.group(1)], rule)


def body_for(method: str, rule: str, ids: dict):
    """The route's body (or a search's query) with '{name}' placeholders replaced by ids."""
    if method == "DELETE" or (method == "GET" and rule not in SEARCHES):
        return None
    body = BODIES[(method, rule)]  # a KeyError means: a new write route needs a body here
    if body is None:
        return None

    def sub(value):
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value.format(**ids) if isinstance(value, str) else value

    return sub(body)


def call(caller, method: str, rule: str, ids: dict, body_ids: dict | None = None):
    kwargs = {}
    body = body_for(method, rule, body_ids or ids)
    if body is not None:
        kwargs["query_string" if method == "GET" else "json"] = body
    return getattr(caller, method.lower())(fill(rule, ids), **kwargs)


def build_world(caller) -> dict:
    """One of each object, keyed by the url_map's argument names."""
    clinic = caller.make_clinic()
    room = caller.make_room(clinic["id"])
    treatment_type = caller.make_treatment_type()
    consultation = caller.make_treatment_type("consultation")
    practitioner = caller.make_practitioner(
        [clinic["id"]], treatment_type_ids=[treatment_type["id"], consultation["id"]]
    )
    hours = caller.put(
        f"/v1/practitioners/{practitioner['id']}/working-hours", json=[{**HOURS[0], "clinic_id": clinic["id"]}]
    )
    assert hours.status_code == 200, hours.get_json()
    time_off = caller.create(
        f"/v1/practitioners/{practitioner['id']}/time-off",
        {"starts_at": "2030-01-07T09:00:00+00:00", "ends_at": "2030-01-07T12:00:00+00:00", "reason": "Training"},
    )
    patient = caller.make_patient()
    course = caller.make_course(patient["id"], treatment_type["id"])
    key = caller.create("/v1/api-keys", {"name": "Front desk", "scopes": ["read", "book"]})
    caller.create(
        f"/v1/patients/{patient['id']}/past-sessions",
        {"treatment_type_id": consultation["id"], "performed_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
    )
    slot = {
        "clinic_id": clinic["id"],
        "practitioner_id": practitioner["id"],
        "room_id": room["id"],
        "treatment_type_id": treatment_type["id"],
        "patient_id": patient["id"],
    }
    appointment = caller.create("/v1/appointments", {**slot, "starts_at": APPOINTMENT_AT})
    hold = caller.create("/v1/holds", {**slot, "starts_at": HOLD_AT})
    page_hold = caller.create(
        "/v1/booking/holds",
        {**{k: v for k, v in slot.items() if k != "patient_id"}, "treatment_type_id": consultation["id"],
         "starts_at": PAGE_HOLD_AT},
    )  # fmt: skip
    follow_up = _follow_up(caller, appointment)
    plan = _course_plan(caller, treatment_type["id"], consultation["id"])
    waiting = caller.create(
        "/v1/waitlist", {"patient_id": patient["id"], "treatment_type_id": treatment_type["id"], "end": FREE_AT}
    )
    link = caller.create(f"/v1/patients/{patient['id']}/booking-links", {})
    webhook = caller.create("/v1/webhooks", {"url": "https://93.184.215.14/hooks", "event_types": ["hold.expired"]})
    delivery = caller.create(f"/v1/webhooks/{webhook['id']}/test", None, status=202)
    feed = caller.create("/v1/calendar-feeds", {"owner_type": "room", "owner_id": room["id"]})
    external = caller.create(
        f"/v1/practitioners/{practitioner['id']}/external-calendars", {"name": "Hospital", "ics": EXTERNAL_ICS}
    )
    return {
        "clinic_id": clinic["id"],
        "room_id": room["id"],
        "treatment_type_id": treatment_type["id"],
        "practitioner_id": practitioner["id"],
        "time_off_id": time_off["id"],
        "patient_id": patient["id"],
        "course_id": course["id"],
        "key_id": key["id"],
        "appointment_id": appointment["id"],
        "hold_id": hold["id"],
        "hold_token": page_hold["hold_token"],
        "token": appointment["manage_token"],
        "consultation_id": consultation["id"],
        "follow_up_id": follow_up,
        "plan_id": plan,
        "entry_id": waiting["id"],
        "webhook_id": webhook["id"],
        "delivery_id": delivery["id"],
        "feed_id": feed["id"],
        "calendar_id": external["id"],
        "link_id": link["id"],
        "link_token": link["secret"],
    }


def _course_plan(caller, treatment_type_id: str, consultation_id: str) -> str:
    """A held course plan of a second patient, in week 9 (clear of the world's other bookings)."""
    patient = caller.make_patient(name="Planned Patient")
    caller.create(
        f"/v1/patients/{patient['id']}/past-sessions",
        {"treatment_type_id": consultation_id, "performed_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
    )
    course = caller.make_course(patient["id"], treatment_type_id)
    response = caller.post(f"/v1/courses/{course['id']}/plan", json={"sessions": 1, "hold": True, "start": _monday(9)})
    assert response.status_code == 200 and response.get_json()["status"] == "held", response.get_json()
    return response.get_json()["id"]


def _follow_up(caller, appointment: dict) -> str:
    """A proposal as the scheduler records it (its sweep needs a completed session and time to pass)."""
    from models import FollowUp

    start = datetime.fromisoformat(appointment["starts_at"])
    with caller.app.extensions["db_write_sessions"]() as session:
        row = FollowUp(
            organization_id=caller.organization_id,
            appointment_id=appointment["id"],
            patient_id=appointment["patient_id"],
            clinic_id=appointment["clinic_id"],
            treatment_type_id=appointment["treatment_type_id"],
            status="no_slot",
            window_starts_at=start + timedelta(days=28),
            window_ends_at=start + timedelta(days=42),
            reason_code="no_slot",
            reason_detail="Nothing free.",
        )
        session.add(row)
        session.commit()
        return row.id


def snapshot(caller, ids: dict) -> dict:
    """Everything the caller can GET, lists included."""
    result = {}
    for method, rule in ROUTES:
        if method == "GET":
            response = call(caller, method, rule, ids)
            assert response.status_code == 200, (rule, response.get_json())
            result[rule] = response.get_json()
    return result


def nonexistent(ids: dict) -> dict:
    return {name: f"{name.removesuffix('_id')}_{uuid.uuid4().hex}" for name in ids}


def shape(response, ids: dict) -> dict:
    body = response.get_json()
    detail = body["detail"]
    for value in ids.values():
        detail = detail.replace(value, "<id>")
    return {
        "status": response.status_code,
        "mimetype": response.mimetype,
        "keys": sorted(body),
        "type": body["type"],
        "title": body["title"],
        "code": body["code"],
        "detail": detail,
    }


@pytest.fixture
def world(admin):
    return build_world(admin)


def test_route_list_is_the_apps(app):
    assert v1_routes(app) == ROUTES
    assert ITEM_ROUTES and LIST_ROUTES


@pytest.mark.parametrize("method, rule", ITEM_ROUTES, ids=[f"{m} {r}" for m, r in ITEM_ROUTES])
def test_other_organizations_object_is_a_404_like_a_missing_one(admin, other, world, method, rule):
    before = snapshot(admin, world)

    foreign = call(other, method, rule, world)
    assert_problem(foreign, 404, "not_found")
    missing_ids = nonexistent(world)
    missing = call(other, method, rule, missing_ids, body_ids=world)
    assert_problem(missing, 404, "not_found")
    assert shape(foreign, world) == shape(missing, missing_ids)

    assert snapshot(admin, world) == before


@pytest.mark.parametrize("rule", LIST_ROUTES)
def test_other_organizations_lists_show_nothing_of_the_first(admin, other, world, rule):
    listed = other.get(rule)
    assert listed.status_code == 200, listed.get_json()
    data = listed.get_json()["data"]
    if rule == "/v1/api-keys":  # its own admin key, and nothing else
        assert len(data) == 1 and other.token.startswith(data[0]["prefix"])
    else:
        assert data == []


def test_time_off_of_another_organization_is_a_404_under_own_practitioner(admin, other, world):
    own_clinic = other.make_clinic()
    own = other.make_practitioner([own_clinic["id"]])
    path = f"/v1/practitioners/{own['id']}/time-off/{{}}"
    missing = other.get(path.format("tof_nope"))
    for method in ("get", "delete"):
        foreign = getattr(other, method)(path.format(world["time_off_id"]))
        assert_problem(foreign, 404, "not_found")
        assert shape(foreign, world) == shape(missing, {"time_off_id": "tof_nope"})
    assert admin.get(f"/v1/practitioners/{world['practitioner_id']}/time-off/{world['time_off_id']}").status_code == 200


def test_time_off_of_another_practitioner_is_a_404(admin, world):
    second = admin.make_practitioner([world["clinic_id"]])
    path = f"/v1/practitioners/{second['id']}/time-off/{{}}"
    missing = admin.get(path.format("tof_nope"))
    for method in ("get", "delete"):
        wrong = getattr(admin, method)(path.format(world["time_off_id"]))
        assert_problem(wrong, 404, "not_found")
        assert shape(wrong, world) == shape(missing, {"time_off_id": "tof_nope"})


def test_revoking_another_organizations_key_leaves_it_working(admin, other):
    own_key_id = admin.get("/v1/api-keys").get_json()["data"][0]["id"]
    assert_problem(other.delete(f"/v1/api-keys/{own_key_id}"), 404, "not_found")
    assert admin.get("/v1/clinics").status_code == 200


@pytest.mark.parametrize("field", ["clinic_ids", "treatment_type_ids"])
def test_practitioner_cannot_reference_another_organizations_objects(admin, other, world, field):
    own_clinic = other.make_clinic()
    foreign_id = world[field.removesuffix("s")]
    payload = {"name": "Mole", "clinic_ids": [own_clinic["id"]], field: [foreign_id]}

    body = assert_problem(other.post("/v1/practitioners", json=payload), 422, "validation_error")
    assert foreign_id in str(body["errors"][field])
    assert other.get("/v1/practitioners").get_json()["data"] == []

    own = other.make_practitioner([own_clinic["id"]])
    patched = other.patch(f"/v1/practitioners/{own['id']}", json={field: [foreign_id]})
    assert field in assert_problem(patched, 422, "validation_error")["errors"]
    assert other.get(f"/v1/practitioners/{own['id']}").get_json() == own


def test_foreign_reference_reads_like_an_unknown_id(other, world):
    foreign = other.post("/v1/practitioners", json={"name": "M", "clinic_ids": [world["clinic_id"]]})
    unknown = other.post("/v1/practitioners", json={"name": "M", "clinic_ids": ["cln_nope"]})
    assert foreign.status_code == unknown.status_code == 422
    errors = (foreign.get_json()["errors"], unknown.get_json()["errors"])
    assert str(errors[0]).replace(world["clinic_id"], "X") == str(errors[1]).replace("cln_nope", "X")


def test_working_hours_cannot_name_another_organizations_clinic(other, world):
    own_clinic = other.make_clinic()
    own = other.make_practitioner([own_clinic["id"]])
    hours = [{**HOURS[0], "clinic_id": world["clinic_id"]}]
    response = other.put(f"/v1/practitioners/{own['id']}/working-hours", json=hours)
    assert_problem(response, 422, "validation_error")
    assert other.get(f"/v1/practitioners/{own['id']}/working-hours").get_json() == []


def test_course_cannot_use_another_organizations_treatment_type(other, world):
    patient = other.make_patient()
    response = other.post(
        f"/v1/patients/{patient['id']}/courses",
        json={"treatment_type_id": world["treatment_type_id"], "indication": "acne_scars"},
    )
    assert "treatment_type_id" in assert_problem(response, 422, "validation_error")["errors"]
    assert other.get(f"/v1/patients/{patient['id']}/courses").get_json()["data"] == []


def test_availability_of_another_organizations_ids_reads_like_unknown_ids(other, world):
    foreign = call(other, "GET", "/v1/availability", world)
    unknown = call(other, "GET", "/v1/availability", nonexistent(world))
    assert_problem(foreign, 422, "validation_error")
    assert foreign.status_code == unknown.status_code
    assert sorted(foreign.get_json()["errors"]) == sorted(unknown.get_json()["errors"])
