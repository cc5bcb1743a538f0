"""One rule for every DELETE: the object is gone from the API. Its GET, PATCH and DELETE are a
404 `not_found`, and its list leaves it out. Revoked API keys and calendar feeds stay listable
for an audit (`include_revoked=true`, with `revoked_at`). A hold's DELETE is a step of its life
(release), and the hold reads on with `status: released`, like an expired or booked one; so is a
course plan's, which releases its holds."""

from __future__ import annotations

import pytest

from ..helpers import assert_problem
from .test_tenancy import ROUTES, call, fill
from .test_tenancy import build_world as build_every_object

RELEASES = ("/v1/holds/<hold_id>", "/v1/course-plans/<plan_id>")
DELETES = [r for m, r in ROUTES if m == "DELETE" and r not in RELEASES]
# The list each deleted object was in.
LIST_OF = {
    "/v1/api-keys/<key_id>": "/v1/api-keys",
    "/v1/patients/<patient_id>/booking-links/<link_id>": "/v1/patients/<patient_id>/booking-links",
    "/v1/calendar-feeds/<feed_id>": "/v1/calendar-feeds",
    "/v1/clinics/<clinic_id>": "/v1/clinics",
    "/v1/external-calendars/<calendar_id>": "/v1/practitioners/<practitioner_id>/external-calendars",
    "/v1/practitioners/<practitioner_id>": "/v1/practitioners",
    "/v1/practitioners/<practitioner_id>/time-off/<time_off_id>": "/v1/practitioners/<practitioner_id>/time-off",
    "/v1/rooms/<room_id>": "/v1/clinics/<clinic_id>/rooms",
    "/v1/waitlist/<entry_id>": "/v1/waitlist",
    "/v1/webhooks/<webhook_id>": "/v1/webhooks",
}
# What must go before the object can (a clinic in use is a 409 `in_use`).
FIRST = {"/v1/clinics/<clinic_id>": ["/v1/rooms/<room_id>", "/v1/practitioners/<practitioner_id>"]}
AUDITED = {"/v1/api-keys/<key_id>", "/v1/calendar-feeds/<feed_id>"}
RULE = "From then on its GET, PATCH and DELETE are a 404"


def _ids_in(caller, list_rule: str, ids: dict, **query) -> set[str]:
    answer = caller.get(fill(list_rule, ids), query_string=query)
    assert answer.status_code == 200, answer.get_json()
    return {o["id"] for o in answer.get_json()["data"]}


def test_every_delete_route_is_here():
    assert set(DELETES) == set(LIST_OF)


@pytest.mark.parametrize("rule", DELETES)
def test_a_deleted_object_is_gone_from_the_api(admin, rule):
    ids = build_every_object(admin)
    path, item_id = fill(rule, ids), fill(rule, ids).rsplit("/", 1)[-1]
    assert item_id in _ids_in(admin, LIST_OF[rule], ids)
    for before in FIRST.get(rule, []):
        assert admin.delete(fill(before, ids)).status_code == 204
    assert admin.delete(path).status_code == 204
    methods = {m for m, r in ROUTES if r == rule}
    if "GET" in methods:
        assert_problem(admin.get(path), 404, "not_found")
    if "PATCH" in methods:
        assert_problem(call(admin, "PATCH", rule, ids), 404, "not_found")
    assert_problem(admin.delete(path), 404, "not_found")
    assert item_id not in _ids_in(admin, LIST_OF[rule], ids)


@pytest.mark.parametrize("rule", sorted(AUDITED))
def test_a_revoked_key_or_feed_stays_listable_for_an_audit(admin, rule):
    ids = build_every_object(admin)
    path, item_id = fill(rule, ids), fill(rule, ids).rsplit("/", 1)[-1]
    live = _ids_in(admin, LIST_OF[rule], ids, include_revoked="true")
    assert admin.delete(path).status_code == 204
    answer = admin.get(LIST_OF[rule], query_string={"include_revoked": "true"})
    listed = {o["id"]: o for o in answer.get_json()["data"]}
    assert set(listed) == live and listed[item_id]["revoked_at"] is not None
    assert all(o["revoked_at"] is None for i, o in listed.items() if i != item_id)


def test_a_released_hold_reads_on_as_released(admin):
    ids = build_every_object(admin)
    path = fill("/v1/holds/<hold_id>", ids)
    assert admin.delete(path).status_code == 204
    answer = admin.get(path)
    assert answer.status_code == 200 and answer.get_json()["status"] == "released"


def test_a_released_course_plan_reads_on_as_released_with_its_holds(admin):
    ids = build_every_object(admin)
    path = fill("/v1/course-plans/<plan_id>", ids)
    assert admin.delete(path).status_code == 204
    answer = admin.get(path)
    assert answer.status_code == 200 and answer.get_json()["status"] == "released"
    assert {s["hold"]["status"] for s in answer.get_json()["sessions"]} == {"released"}


def test_every_delete_says_what_the_object_reads_as_afterwards(client):
    spec = client.get("/openapi.json").get_json()
    for rule in DELETES:
        path = rule.replace("<", "{").replace(">", "}")
        assert RULE in spec["paths"][path]["delete"]["description"], rule
    for rule in RELEASES:
        path = rule.replace("<", "{").replace(">", "}")
        assert "status: released" in spec["paths"][path]["delete"]["description"], rule
