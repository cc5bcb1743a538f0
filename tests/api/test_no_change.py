"""A change that changes nothing leaves the object as it was: the same version (ETag) and
updated_at, so another client holding the ETag gets no spurious 412 and incremental sync
sees nothing new. A real change still moves both."""

from __future__ import annotations

import pytest

from .test_tenancy import ARGUMENT, ROUTES, fill
from .test_tenancy import build_world as build_every_object

CHANGE_ROUTES = [(m, r) for m, r in ROUTES if m in ("PATCH", "PUT")]
# The PUT of working hours answers the list; its ETag and updated_at are the practitioner's.
READ_BACK = {"/v1/practitioners/<practitioner_id>/working-hours": "/v1/practitioners/<practitioner_id>"}
# Lists and fields the world's objects get before the test, so a PATCH repeats more than defaults.
ENRICH = {
    "/v1/clinics/<clinic_id>": {
        "address": "1 Soho Square",
        "closures": [{"start_date": "2030-12-25", "end_date": "2030-12-26", "reason": "Christmas"}],
    },
    "/v1/patients/<patient_id>": {
        "phone": "+442079460123",
        "date_of_birth": "1990-05-01",
        "contraindications": ["rosacea", "active_acne"],
        "assessed_by": "Dr Who",
    },
    "/v1/courses/<course_id>": {"notes": "Left cheek first"},
    "/v1/rooms/<room_id>": {"capabilities": ["needling", "numbing"]},
}


def _request_fields(spec: dict, method: str, rule: str) -> set[str]:
    path = ARGUMENT.sub(lambda m: "{" + m.group(1) + "}", rule)
    schema = spec["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
    schema = schema.get("items", schema)
    name = schema["$ref"].rsplit("/", 1)[-1]
    properties = spec["components"]["schemas"][name]["properties"]
    return {f for f, p in properties.items() if not p.get("readOnly") and not p.get("writeOnly")}


def _as_it_is(caller, method: str, rule: str, ids: dict):
    """The route's body repeating the object's current values."""
    current = caller.get(fill(rule, ids))
    assert current.status_code == 200, current.get_json()
    fields = _request_fields(caller.get("/openapi.json").get_json(), method, rule)
    body = current.get_json()
    if isinstance(body, list):
        return [{k: v for k, v in item.items() if k in fields} for item in body]
    return {k: v for k, v in body.items() if k in fields and k != "ics"}


def _state(caller, rule: str, ids: dict) -> tuple[str, str]:
    answer = caller.get(fill(READ_BACK.get(rule, rule), ids))
    assert answer.status_code == 200, answer.get_json()
    return answer.headers["ETag"], answer.get_json()["updated_at"]


@pytest.fixture
def world(admin):
    ids = build_every_object(admin)
    for rule, body in ENRICH.items():
        response = admin.patch(fill(rule, ids), json=body)
        assert response.status_code == 200, response.get_json()
    return ids


@pytest.mark.parametrize("method, rule", CHANGE_ROUTES, ids=[f"{m} {r}" for m, r in CHANGE_ROUTES])
def test_a_change_repeating_the_current_values_changes_nothing(admin, world, method, rule):
    before = _state(admin, rule, world)
    body = _as_it_is(admin, method, rule, world)
    answer = getattr(admin, method.lower())(fill(rule, world), json=body)
    assert answer.status_code == 200, answer.get_json()
    if rule not in READ_BACK:
        assert answer.headers["ETag"] == before[0]
        argument = ARGUMENT.search(rule)  # none on /v1/organization: the key's own
        assert argument is None or answer.get_json()["id"] == world[argument.group(1)]
    assert _state(admin, rule, world) == before


def test_a_patch_naming_a_list_in_another_order_is_no_change(admin, world):
    path = fill("/v1/patients/<patient_id>", world)
    before = _state(admin, "/v1/patients/<patient_id>", world)
    answer = admin.patch(path, json={"contraindications": ["active_acne", "rosacea"], "assessed_by": "Dr Who"})
    assert answer.status_code == 200 and answer.headers["ETag"] == before[0]


REAL_CHANGES = {
    "/v1/organization": {"booking_policy": {"horizon_days": 30}},
    "/v1/clinics/<clinic_id>": {"opening_hours": [{"weekday": 0, "start": "09:00", "end": "12:00"}]},
    "/v1/rooms/<room_id>": {"capabilities": ["needling"]},
    "/v1/practitioners/<practitioner_id>": {"name": "Dr Other"},
    "/v1/treatment-types/<treatment_type_id>": {"allowed_areas": ["face"]},
    "/v1/patients/<patient_id>": {"contraindications": ["rosacea"]},
    "/v1/courses/<course_id>": {"notes": "Right cheek first"},
    "/v1/external-calendars/<calendar_id>": {"name": "Hospital rota"},
    "/v1/webhooks/<webhook_id>": {"event_types": ["hold.expired", "appointment.created"]},
    "/v1/practitioners/<practitioner_id>/working-hours": [
        {"clinic_id": "{clinic_id}", "weekday": 1, "start": "09:00", "end": "17:00"}
    ],
}


@pytest.mark.parametrize("rule", sorted(REAL_CHANGES))
def test_a_real_change_still_moves_the_version_and_updated_at(admin, world, rule):
    before = _state(admin, rule, world)
    body = REAL_CHANGES[rule]
    if isinstance(body, list):
        body = [{**item, "clinic_id": world["clinic_id"]} for item in body]
    method = "put" if rule in READ_BACK else "patch"
    answer = getattr(admin, method)(fill(rule, world), json=body)
    assert answer.status_code == 200, answer.get_json()
    after = _state(admin, rule, world)
    assert after[0] != before[0] and after[1] > before[1]


def test_every_change_route_has_a_real_change_here():
    assert {r for _, r in CHANGE_ROUTES} - {"/v1/appointments/<appointment_id>"} == set(REAL_CHANGES)
