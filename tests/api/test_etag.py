"""ETag on item GETs and on the answers of changes; If-Match honoured by PATCH, DELETE and the
lifecycle POSTs, so of two writers holding the same ETag only the first can change the object."""

from __future__ import annotations

import pytest

from ..helpers import assert_problem
from .test_tenancy import ARGUMENT, ROUTES, call, fill
from .test_tenancy import build_world as build_every_object

STALE = '"stale.0"'


def etag_of(caller, path: str) -> str:
    response = caller.get(path)
    assert response.status_code == 200, response.get_json()
    return response.headers["ETag"]


def test_an_item_has_a_strong_etag_that_stays_until_it_changes(admin):
    clinic = admin.make_clinic()
    path = f"/v1/clinics/{clinic['id']}"
    tag = etag_of(admin, path)
    assert tag.startswith('"') and clinic["id"] in tag  # strong: If-Match compares strongly
    assert etag_of(admin, path) == tag
    changed = admin.patch(path, json={"name": "Covent Garden"})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert etag_of(admin, path) == changed.headers["ETag"]


def test_a_created_object_comes_with_its_etag(admin):
    response = admin.post("/v1/patients", json={"name": "Ada"})
    assert response.status_code == 201
    assert response.headers["ETag"] == etag_of(admin, f"/v1/patients/{response.get_json()['id']}")


def test_a_stale_if_match_is_a_412_and_changes_nothing(admin):
    patient = admin.make_patient()
    path = f"/v1/patients/{patient['id']}"
    tag = etag_of(admin, path)
    assert admin.patch(path, json={"name": "First writer"}).status_code == 200
    late = admin.patch(path, json={"name": "Second writer"}, headers={"If-Match": tag})
    assert_problem(late, 412, "precondition_failed")
    assert admin.get(path).get_json()["name"] == "First writer"


def test_the_current_etag_or_a_star_lets_the_change_through(admin):
    room = admin.make_room(admin.make_clinic()["id"])
    path = f"/v1/rooms/{room['id']}"
    current = admin.patch(path, json={"name": "Blue"}, headers={"If-Match": etag_of(admin, path)})
    assert current.status_code == 200 and current.get_json()["name"] == "Blue"
    listed = admin.patch(path, json={"name": "Green"}, headers={"If-Match": f"{STALE}, {current.headers['ETag']}"})
    assert listed.status_code == 200
    star = admin.patch(path, json={"name": "Red"}, headers={"If-Match": "*"})
    assert star.status_code == 200 and star.get_json()["name"] == "Red"


def test_a_weak_etag_never_matches(admin):
    clinic = admin.make_clinic()
    path = f"/v1/clinics/{clinic['id']}"
    weak = "W/" + etag_of(admin, path)
    assert_problem(admin.patch(path, json={"name": "X"}, headers={"If-Match": weak}), 412, "precondition_failed")


def test_a_change_to_a_list_alone_changes_the_etag(admin):
    clinic = admin.make_clinic()
    path = f"/v1/clinics/{clinic['id']}"
    tag = etag_of(admin, path)
    hours = admin.patch(path, json={"opening_hours": [{"weekday": 0, "start": "10:00", "end": "12:00"}]})
    assert hours.status_code == 200 and hours.headers["ETag"] != tag
    assert_problem(admin.patch(path, json={"name": "X"}, headers={"If-Match": tag}), 412, "precondition_failed")
    second = admin.make_clinic(name="Leeds")
    practitioner = admin.make_practitioner([clinic["id"]])
    before = etag_of(admin, f"/v1/practitioners/{practitioner['id']}")
    moved = admin.patch(f"/v1/practitioners/{practitioner['id']}", json={"clinic_ids": [second["id"]]})
    assert moved.status_code == 200 and moved.headers["ETag"] != before


def test_a_lifecycle_step_with_a_stale_if_match_is_a_412(world):
    world.consulted()
    appointment = world.book()
    path = f"/v1/appointments/{appointment['id']}"
    tag = etag_of(world.caller, path)
    world.clock.advance(hours=1)  # check-in opens two hours before the 10:00 start
    checked_in = world.caller.post(f"{path}/check-in", headers={"If-Match": tag})
    assert checked_in.status_code == 200 and checked_in.headers["ETag"] != tag
    late = world.caller.post(f"{path}/cancel", json={"reason": "patient_request"}, headers={"If-Match": tag})
    assert_problem(late, 412, "precondition_failed")
    assert world.caller.get(path).get_json()["status"] == "checked_in"
    cancel = world.caller.post(
        f"{path}/cancel", json={"reason": "patient_request"}, headers={"If-Match": checked_in.headers["ETag"]}
    )
    assert cancel.status_code == 200 and cancel.get_json()["status"] == "cancelled"


def test_a_reschedule_checks_the_old_appointment_and_answers_with_the_new_ones_etag(world):
    world.consulted()
    old = world.book()
    path = f"/v1/appointments/{old['id']}"
    tag = etag_of(world.caller, path)
    stale = world.caller.patch(path, json={"starts_at": world.at(1)}, headers={"If-Match": STALE})
    assert_problem(stale, 412, "precondition_failed")
    assert world.caller.get(path).get_json()["status"] == "booked"
    moved = world.caller.patch(path, json={"starts_at": world.at(1)}, headers={"If-Match": tag})
    assert moved.status_code == 200, moved.get_json()
    new = moved.get_json()
    assert new["rescheduled_from"] == old["id"] and new["id"] in moved.headers["ETag"]
    assert moved.headers["ETag"] == etag_of(world.caller, f"/v1/appointments/{new['id']}")
    assert etag_of(world.caller, path) != tag  # the old one is cancelled: a new version
    again = world.caller.patch(path, json={"starts_at": world.at(2)}, headers={"If-Match": tag})
    assert_problem(again, 412, "precondition_failed")


def test_a_delete_with_a_stale_if_match_keeps_the_object(admin):
    clinic = admin.make_clinic()
    room = admin.make_room(clinic["id"])
    path = f"/v1/rooms/{room['id']}"
    assert_problem(admin.delete(path, headers={"If-Match": STALE}), 412, "precondition_failed")
    assert admin.get(path).status_code == 200
    assert admin.delete(path, headers={"If-Match": etag_of(admin, path)}).status_code == 204


# Every route, from the url_map: a new item route is covered without anyone listing it here.
LIFECYCLE = ("/cancel", "/check-in", "/complete", "/no-show")
ITEM_GETS = [r for m, r in ROUTES if m == "GET" and ARGUMENT.search(r.rsplit("/", 1)[-1])]
CHANGES = [(m, r) for m, r in ROUTES if m in ("PATCH", "DELETE") or (m == "POST" and r.endswith(LIFECYCLE))]


def _params(routes):
    return [
        pytest.param(
            *(route if isinstance(route, tuple) else (route,)),
            id=" ".join(route if isinstance(route, tuple) else (route,)),
        )
        for route in routes
    ]


@pytest.mark.parametrize("rule", _params(ITEM_GETS))
def test_every_item_get_has_an_etag(admin, rule):
    ids = build_every_object(admin)
    response = admin.get(fill(rule, ids))
    assert response.status_code == 200, response.get_json()
    assert response.headers.get("ETag", "").startswith('"')


@pytest.mark.parametrize("method, rule", _params(CHANGES))
def test_every_change_refuses_a_stale_if_match(admin, method, rule):
    ids = build_every_object(admin)
    response = call(admin.with_headers({"If-Match": STALE}), method, rule, ids)
    assert_problem(response, 412, "precondition_failed")


# '""' is a well-formed but empty entity tag (werkzeug reads it as None): it names no version either.
GARBAGE = [",", " , ,", "", '"unterminated', '"a" junk', "W/", "*x", '""', '"", ""']


@pytest.mark.parametrize("garbage", GARBAGE)
def test_an_if_match_naming_no_entity_tag_is_a_412_never_unconditional(admin, garbage):
    patient = admin.make_patient(name="Before")
    path = f"/v1/patients/{patient['id']}"
    assert_problem(admin.patch(path, json={"name": "After"}, headers={"If-Match": garbage}), 412, "precondition_failed")
    assert admin.get(path).get_json()["name"] == "Before"


@pytest.mark.parametrize("method, rule", _params(CHANGES))
def test_every_change_refuses_a_garbage_if_match(admin, method, rule):
    ids = build_every_object(admin)
    response = call(admin.with_headers({"If-Match": ","}), method, rule, ids)
    assert_problem(response, 412, "precondition_failed")


def test_the_openapi_documents_etag_and_if_match(client):
    spec = client.get("/openapi.json").get_json()
    assert "ETag" in spec["components"]["headers"]
    assert spec["components"]["parameters"]["IfMatch"].get("required") is not True
    clinic = spec["paths"]["/v1/clinics/{clinic_id}"]
    assert "ETag" in clinic["get"]["responses"]["200"]["headers"]
    assert "ETag" in clinic["patch"]["responses"]["200"]["headers"]
    for operation in (
        clinic["patch"],
        clinic["delete"],
        spec["paths"]["/v1/appointments/{appointment_id}/complete"]["post"],
    ):
        assert {"$ref": "#/components/parameters/IfMatch"} in operation["parameters"]
        assert "412" in operation["responses"]
