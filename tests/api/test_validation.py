"""Validation rules of every resource, through the HTTP API.

A broken rule is a 422 application/problem+json with code `validation_error` whose
`errors` names the field; a request that fails writes nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from booking.domain.vocabulary import CONTRAINDICATIONS
from models import Clinic, Course, OpeningHours, Patient, Practitioner, WorkingHours

from ..helpers import assert_problem


def field_errors(response) -> dict:
    """The `errors` of a 422 validation_error problem."""
    body = assert_problem(response, 422, "validation_error")
    assert isinstance(body.get("errors"), dict), body
    return body["errors"]


def count(db, model, organization_id) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(model).where(model.organization_id == organization_id))


def hours(weekday, start, end, clinic_id=None) -> dict:
    entry = {"weekday": weekday, "start": start, "end": end}
    return {"clinic_id": clinic_id, **entry} if clinic_id else entry


# --------------------------------------------------------------------------- clinics


@pytest.mark.parametrize("zone", ["Mars/Base", "EST", "CET", "+01:00", "UTC+1", "europe/london", ""])
def test_clinic_timezone_must_be_an_iana_zone(admin, zone):
    response = admin.post("/v1/clinics", json={"name": "Soho", "timezone": zone})
    assert "timezone" in field_errors(response)


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "UTC"])
def test_clinic_accepts_iana_zones(admin, zone):
    assert admin.make_clinic(timezone=zone)["timezone"] == zone


def test_clinic_timezone_is_required(admin):
    assert "timezone" in field_errors(admin.post("/v1/clinics", json={"name": "Soho"}))


@pytest.mark.parametrize("weekday", [-1, 7])
def test_opening_hours_weekday_is_0_to_6(admin, weekday):
    errors = field_errors(
        admin.post(
            "/v1/clinics",
            json={"name": "Soho", "timezone": "Europe/London", "opening_hours": [hours(weekday, "09:00", "17:00")]},
        )
    )
    assert "weekday" in errors["opening_hours"]["0"]


@pytest.mark.parametrize("start", ["9:00", "25:00", "12:60", "24:00", "0900", "09:00:00", "noon", "09:00\n"])
def test_opening_hours_start_must_be_hh_mm(admin, start):
    errors = field_errors(
        admin.post(
            "/v1/clinics",
            json={"name": "Soho", "timezone": "Europe/London", "opening_hours": [hours(0, start, "23:00")]},
        )
    )
    assert "start" in errors["opening_hours"]["0"]


@pytest.mark.parametrize("end", ["9:00", "25:00", "12:60", "24:01"])
def test_opening_hours_end_must_be_hh_mm(admin, end):
    errors = field_errors(
        admin.post(
            "/v1/clinics", json={"name": "Soho", "timezone": "Europe/London", "opening_hours": [hours(0, "00:00", end)]}
        )
    )
    assert "end" in errors["opening_hours"]["0"]


def test_opening_hours_may_end_at_24_00(admin):
    clinic = admin.make_clinic(opening_hours=[hours(4, "18:00", "24:00")])
    assert clinic["opening_hours"] == [hours(4, "18:00", "24:00")]


@pytest.mark.parametrize("start,end", [("17:00", "09:00"), ("09:00", "09:00")])
def test_opening_hours_start_must_be_before_end(admin, start, end):
    errors = field_errors(
        admin.post(
            "/v1/clinics", json={"name": "Soho", "timezone": "Europe/London", "opening_hours": [hours(0, start, end)]}
        )
    )
    assert "end" in errors["opening_hours"]["0"]


def test_overlapping_opening_hours_on_one_weekday_are_refused(admin):
    errors = field_errors(
        admin.post(
            "/v1/clinics",
            json={
                "name": "Soho",
                "timezone": "Europe/London",
                "opening_hours": [hours(0, "09:00", "13:00"), hours(0, "12:00", "17:00")],
            },
        )
    )
    assert "start" in errors["opening_hours"]["1"]


def test_a_lunch_break_splits_a_day_into_two_intervals(admin):
    week = [hours(0, "09:00", "12:00"), hours(0, "13:00", "17:00"), hours(1, "12:00", "17:00")]
    clinic = admin.make_clinic(opening_hours=week)
    assert admin.get(f"/v1/clinics/{clinic['id']}").get_json()["opening_hours"] == week


def test_the_same_hours_on_different_weekdays_do_not_overlap(admin):
    week = [hours(0, "09:00", "17:00"), hours(1, "09:00", "17:00")]
    assert admin.make_clinic(opening_hours=week)["opening_hours"] == week


def test_closure_may_not_end_before_it_starts(admin):
    errors = field_errors(
        admin.post(
            "/v1/clinics",
            json={
                "name": "Soho",
                "timezone": "Europe/London",
                "closures": [{"start_date": "2030-12-24", "end_date": "2030-12-23"}],
            },
        )
    )
    assert "end_date" in errors["closures"]["0"]


def test_a_one_day_closure_is_allowed(admin):
    closure = {"start_date": "2030-12-25", "end_date": "2030-12-25", "reason": "Christmas"}
    assert admin.make_clinic(closures=[closure])["closures"] == [closure]


def test_unknown_clinic_fields_are_refused(admin):
    errors = field_errors(
        admin.post("/v1/clinics", json={"name": "Soho", "timezone": "Europe/London", "colour": "red"})
    )
    assert "colour" in errors


def test_unknown_fields_inside_opening_hours_are_refused(admin):
    errors = field_errors(
        admin.post(
            "/v1/clinics",
            json={
                "name": "Soho",
                "timezone": "Europe/London",
                "opening_hours": [{**hours(0, "09:00", "17:00"), "open": True}],
            },
        )
    )
    assert "open" in errors["opening_hours"]["0"]


def test_clinic_name_is_required_and_not_empty(admin):
    assert "name" in field_errors(admin.post("/v1/clinics", json={"timezone": "Europe/London"}))
    assert "name" in field_errors(admin.post("/v1/clinics", json={"name": "", "timezone": "Europe/London"}))


def test_patch_replaces_opening_hours_and_closures(admin):
    clinic = admin.make_clinic(closures=[{"start_date": "2030-01-01", "end_date": "2030-01-02"}])
    new_closure = {"start_date": "2030-08-01", "end_date": "2030-08-14", "reason": "Summer"}
    response = admin.patch(
        f"/v1/clinics/{clinic['id']}", json={"opening_hours": [hours(6, "10:00", "14:00")], "closures": [new_closure]}
    )
    assert response.status_code == 200, response.get_json()
    after = admin.get(f"/v1/clinics/{clinic['id']}").get_json()
    assert after["opening_hours"] == [hours(6, "10:00", "14:00")]
    assert after["closures"] == [new_closure]


def test_patch_without_lists_keeps_them(admin):
    clinic = admin.make_clinic()
    assert admin.patch(f"/v1/clinics/{clinic['id']}", json={"name": "Soho 2"}).status_code == 200
    after = admin.get(f"/v1/clinics/{clinic['id']}").get_json()
    assert after["name"] == "Soho 2"
    assert after["opening_hours"] == clinic["opening_hours"]


def test_patch_validates_opening_hours_like_post(admin):
    clinic = admin.make_clinic()
    errors = field_errors(
        admin.patch(
            f"/v1/clinics/{clinic['id']}",
            json={"opening_hours": [hours(0, "09:00", "13:00"), hours(0, "10:00", "11:00")]},
        )
    )
    assert "opening_hours" in errors


@pytest.mark.parametrize("missing", ["weekday", "start", "end"])
def test_patch_opening_hours_entries_need_every_field(admin, missing):
    clinic = admin.make_clinic()
    entry = {k: v for k, v in hours(0, "09:00", "17:00").items() if k != missing}
    errors = field_errors(admin.patch(f"/v1/clinics/{clinic['id']}", json={"opening_hours": [entry]}))
    assert missing in errors["opening_hours"]["0"]
    assert admin.get(f"/v1/clinics/{clinic['id']}").get_json()["opening_hours"] == clinic["opening_hours"]


def test_patch_closures_need_both_dates(admin):
    clinic = admin.make_clinic()
    errors = field_errors(admin.patch(f"/v1/clinics/{clinic['id']}", json={"closures": [{"start_date": "2030-01-01"}]}))
    assert "end_date" in errors["closures"]["0"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed", "timezone": "Mars/Base"},
        {"name": "Renamed", "opening_hours": [hours(0, "09:00", "13:00"), hours(0, "12:00", "14:00")]},
        {"name": "Renamed", "closures": [{"start_date": "2030-01-02", "end_date": "2030-01-01"}]},
    ],
)
def test_invalid_patch_leaves_the_clinic_unchanged(admin, body):
    clinic = admin.make_clinic(closures=[{"start_date": "2030-01-01", "end_date": "2030-01-02", "reason": None}])
    assert admin.patch(f"/v1/clinics/{clinic['id']}", json=body).status_code == 422
    after = admin.get(f"/v1/clinics/{clinic['id']}").get_json()
    for field in ("name", "timezone", "opening_hours", "closures"):
        assert after[field] == clinic[field]


def test_timezone_change_that_makes_a_practitioner_overlap_is_refused_and_rolled_back(admin):
    london = admin.make_clinic(name="London", timezone="Europe/London")
    new_york = admin.make_clinic(name="New York", timezone="America/New_York")
    practitioner = admin.make_practitioner([london["id"], new_york["id"]])
    week = [hours(0, "09:00", "13:00", london["id"]), hours(0, "09:00", "12:00", new_york["id"])]
    assert admin.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=week).status_code == 200

    errors = field_errors(
        admin.patch(f"/v1/clinics/{new_york['id']}", json={"name": "Moved", "timezone": "Europe/London"})
    )
    assert "timezone" in errors
    after = admin.get(f"/v1/clinics/{new_york['id']}").get_json()
    assert (after["name"], after["timezone"]) == ("New York", "America/New_York")


def test_refused_clinic_writes_nothing(admin, db):
    response = admin.post(
        "/v1/clinics",
        json={
            "name": "Soho",
            "timezone": "Europe/London",
            "opening_hours": [hours(0, "09:00", "17:00"), hours(0, "16:00", "18:00")],
        },
    )
    assert response.status_code == 422
    assert admin.get("/v1/clinics").get_json()["data"] == []
    assert count(db, Clinic, admin.organization_id) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(OpeningHours)) == 0


# --------------------------------------------------------------------------- rooms


@pytest.mark.parametrize(
    "capabilities",
    [
        ["Needling"],
        ["micro needling"],
        ["needling-pen"],
        [""],
        ["1st"],
        [7],
        ["needling\n"],
        "needling",
    ],
)
def test_room_capabilities_must_be_lowercase_words(admin, capabilities):
    clinic = admin.make_clinic()
    response = admin.post(f"/v1/clinics/{clinic['id']}/rooms", json={"name": "Room", "capabilities": capabilities})
    assert "capabilities" in field_errors(response)


def test_room_capabilities_must_not_repeat(admin):
    clinic = admin.make_clinic()
    response = admin.post(
        f"/v1/clinics/{clinic['id']}/rooms", json={"name": "Room", "capabilities": ["needling", "needling"]}
    )
    assert "capabilities" in field_errors(response)


def test_room_accepts_several_distinct_lowercase_capabilities(admin):
    clinic = admin.make_clinic()
    room = admin.make_room(clinic["id"], capabilities=["needling", "consultation", "led_mask2"])
    assert room["capabilities"] == ["needling", "consultation", "led_mask2"]


def test_room_patch_validates_capabilities(admin):
    room = admin.make_room(admin.make_clinic()["id"])
    response = admin.patch(f"/v1/rooms/{room['id']}", json={"capabilities": ["needling", "needling"]})
    assert "capabilities" in field_errors(response)
    assert admin.get(f"/v1/rooms/{room['id']}").get_json()["capabilities"] == ["needling"]


def test_room_clinic_id_is_not_writable(admin):
    clinic, elsewhere = admin.make_clinic(), admin.make_clinic(name="Elsewhere")
    room = admin.make_room(clinic["id"])
    response = admin.patch(f"/v1/rooms/{room['id']}", json={"clinic_id": elsewhere["id"]})
    assert "clinic_id" in field_errors(response)
    assert admin.get(f"/v1/rooms/{room['id']}").get_json()["clinic_id"] == clinic["id"]


# --------------------------------------------------------------------------- practitioners


@pytest.mark.parametrize("body", [{"name": "Dr A"}, {"name": "Dr A", "clinic_ids": []}])
def test_practitioner_needs_at_least_one_clinic(admin, body):
    assert "clinic_ids" in field_errors(admin.post("/v1/practitioners", json=body))


def test_practitioner_with_unknown_clinic_is_refused(admin):
    response = admin.post("/v1/practitioners", json={"name": "Dr A", "clinic_ids": ["cln_nope"]})
    assert "clinic_ids" in field_errors(response)


def test_practitioner_at_another_organizations_clinic_is_refused(admin, other):
    theirs = other.make_clinic()
    response = admin.post("/v1/practitioners", json={"name": "Dr A", "clinic_ids": [theirs["id"]]})
    assert "clinic_ids" in field_errors(response)


def test_practitioner_with_unknown_treatment_type_is_refused(admin):
    clinic = admin.make_clinic()
    response = admin.post(
        "/v1/practitioners", json={"name": "Dr A", "clinic_ids": [clinic["id"]], "treatment_type_ids": ["tt_nope"]}
    )
    assert "treatment_type_ids" in field_errors(response)


def test_practitioner_with_another_organizations_treatment_type_is_refused(admin, other):
    clinic, theirs = admin.make_clinic(), other.make_treatment_type()
    response = admin.post(
        "/v1/practitioners", json={"name": "Dr A", "clinic_ids": [clinic["id"]], "treatment_type_ids": [theirs["id"]]}
    )
    assert "treatment_type_ids" in field_errors(response)


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com"])
def test_practitioner_email_is_validated(admin, email):
    clinic = admin.make_clinic()
    response = admin.post("/v1/practitioners", json={"name": "Dr A", "clinic_ids": [clinic["id"]], "email": email})
    assert "email" in field_errors(response)


def test_practitioner_with_valid_references_is_created(admin):
    clinic, treatment_type = admin.make_clinic(), admin.make_treatment_type()
    practitioner = admin.make_practitioner(
        [clinic["id"]], email="dr.a@example.com", treatment_type_ids=[treatment_type["id"]]
    )
    assert practitioner["clinic_ids"] == [clinic["id"]]
    assert practitioner["treatment_type_ids"] == [treatment_type["id"]]
    assert practitioner["email"] == "dr.a@example.com"


def test_practitioner_patch_refuses_empty_clinic_ids(admin):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    response = admin.patch(f"/v1/practitioners/{practitioner['id']}", json={"clinic_ids": []})
    assert "clinic_ids" in field_errors(response)
    assert admin.get(f"/v1/practitioners/{practitioner['id']}").get_json()["clinic_ids"] == [clinic["id"]]


def test_practitioner_with_one_valid_and_one_unknown_clinic_writes_nothing(admin, db):
    clinic = admin.make_clinic()
    response = admin.post("/v1/practitioners", json={"name": "Dr A", "clinic_ids": [clinic["id"], "cln_nope"]})
    assert "cln_nope" in str(field_errors(response)["clinic_ids"])
    assert admin.get("/v1/practitioners").get_json()["data"] == []
    assert count(db, Practitioner, admin.organization_id) == 0


# --------------------------------------------------------------------------- working hours


@pytest.fixture
def london_and_new_york(admin):
    london = admin.make_clinic(name="London", timezone="Europe/London")
    new_york = admin.make_clinic(name="New York", timezone="America/New_York")
    practitioner = admin.make_practitioner([london["id"], new_york["id"]])
    return practitioner, london, new_york


def by_clinic(entry):
    return entry["clinic_id"]


def put_week(caller, practitioner_id, week):
    return caller.put(f"/v1/practitioners/{practitioner_id}/working-hours", json=week)


def get_week(caller, practitioner_id):
    response = caller.get(f"/v1/practitioners/{practitioner_id}/working-hours")
    assert response.status_code == 200
    return response.get_json()


def test_put_working_hours_replaces_the_whole_week(admin):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    first = [hours(d, "09:00", "17:00", clinic["id"]) for d in range(5)]
    assert put_week(admin, practitioner["id"], first).status_code == 200
    second = [hours(2, "10:00", "14:00", clinic["id"]), hours(5, "12:00", "24:00", clinic["id"])]
    response = put_week(admin, practitioner["id"], second)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == second
    assert get_week(admin, practitioner["id"]) == second


def test_put_an_empty_week_clears_the_hours(admin):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    assert put_week(admin, practitioner["id"], [hours(0, "09:00", "17:00", clinic["id"])]).status_code == 200
    assert put_week(admin, practitioner["id"], []).status_code == 200
    assert get_week(admin, practitioner["id"]) == []


def test_working_hours_must_be_at_one_of_the_practitioners_clinics(admin):
    mine, elsewhere = admin.make_clinic(), admin.make_clinic(name="Elsewhere")
    practitioner = admin.make_practitioner([mine["id"]])
    week = [hours(0, "09:00", "12:00", mine["id"]), hours(1, "09:00", "12:00", elsewhere["id"])]
    errors = field_errors(put_week(admin, practitioner["id"], week))
    assert "clinic_id" in errors["1"]
    assert "0" not in errors


@pytest.mark.parametrize("start,end", [("17:00", "09:00"), ("09:00", "09:00")])
def test_working_hours_start_must_be_before_end(admin, start, end):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    errors = field_errors(put_week(admin, practitioner["id"], [hours(0, start, end, clinic["id"])]))
    assert "end" in errors["0"]


@pytest.mark.parametrize(
    "entry,field",
    [
        ({"weekday": 7, "start": "09:00", "end": "17:00"}, "weekday"),
        ({"weekday": 0, "start": "9:00", "end": "17:00"}, "start"),
        ({"weekday": 0, "start": "09:00", "end": "24:30"}, "end"),
        ({"weekday": 0, "start": "09:00"}, "end"),
    ],
)
def test_working_hours_entries_are_well_formed(admin, entry, field):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    errors = field_errors(put_week(admin, practitioner["id"], [{"clinic_id": clinic["id"], **entry}]))
    assert field in errors["0"]


def test_working_hours_body_must_be_a_list(admin):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    response = put_week(admin, practitioner["id"], hours(0, "09:00", "17:00", clinic["id"]))
    assert_problem(response, 422, "validation_error")


def test_overlapping_hours_at_the_same_clinic_are_refused(admin):
    clinic = admin.make_clinic()
    practitioner = admin.make_practitioner([clinic["id"]])
    week = [hours(0, "09:00", "13:00", clinic["id"]), hours(0, "12:30", "17:00", clinic["id"])]
    assert "start" in field_errors(put_week(admin, practitioner["id"], week))["1"]


def test_overlapping_hours_at_two_clinics_in_the_same_zone_are_refused(admin):
    soho = admin.make_clinic(name="Soho", timezone="Europe/London")
    camden = admin.make_clinic(name="Camden", timezone="Europe/London")
    practitioner = admin.make_practitioner([soho["id"], camden["id"]])
    week = [hours(0, "09:00", "13:00", soho["id"]), hours(0, "12:00", "17:00", camden["id"])]
    assert "start" in field_errors(put_week(admin, practitioner["id"], week))["1"]


def test_back_to_back_hours_at_two_clinics_are_allowed(admin):
    soho = admin.make_clinic(name="Soho", timezone="Europe/London")
    camden = admin.make_clinic(name="Camden", timezone="Europe/London")
    practitioner = admin.make_practitioner([soho["id"], camden["id"]])
    week = [hours(0, "09:00", "13:00", soho["id"]), hours(0, "13:00", "17:00", camden["id"])]
    assert put_week(admin, practitioner["id"], week).status_code == 200


def test_hours_that_overlap_in_real_time_across_zones_are_refused(admin, london_and_new_york):
    practitioner, london, new_york = london_and_new_york
    # London 14:00-18:00 is New York 09:00-13:00 (or 10:00-14:00 while only one side is on DST).
    week = [hours(0, "14:00", "18:00", london["id"]), hours(0, "09:00", "12:00", new_york["id"])]
    assert "start" in field_errors(put_week(admin, practitioner["id"], week))["1"]


def test_same_wall_clock_hours_across_zones_that_do_not_overlap_are_allowed(admin, london_and_new_york):
    practitioner, london, new_york = london_and_new_york
    week = [hours(0, "09:00", "13:00", london["id"]), hours(0, "09:00", "12:00", new_york["id"])]
    response = put_week(admin, practitioner["id"], week)
    assert response.status_code == 200, response.get_json()
    assert sorted(get_week(admin, practitioner["id"]), key=by_clinic) == sorted(week, key=by_clinic)


def test_late_new_york_evening_overlaps_next_london_morning(admin, london_and_new_york):
    practitioner, london, new_york = london_and_new_york
    # New York Monday 20:00-24:00 is London Tuesday 01:00-05:00 (00:00-04:00 in the DST gaps).
    week = [hours(0, "20:00", "24:00", new_york["id"]), hours(1, "02:00", "06:00", london["id"])]
    assert "start" in field_errors(put_week(admin, practitioner["id"], week))["1"]


def test_refused_put_leaves_the_previous_week_intact(admin, london_and_new_york, db):
    practitioner, london, new_york = london_and_new_york
    before = [hours(0, "09:00", "13:00", london["id"]), hours(2, "09:00", "17:00", new_york["id"])]
    assert put_week(admin, practitioner["id"], before).status_code == 200
    clash = [hours(0, "14:00", "18:00", london["id"]), hours(0, "09:00", "12:00", new_york["id"])]
    assert put_week(admin, practitioner["id"], clash).status_code == 422
    assert get_week(admin, practitioner["id"]) == before
    stored = db.scalar(
        sa.select(sa.func.count()).select_from(WorkingHours).where(WorkingHours.practitioner_id == practitioner["id"])
    )
    assert stored == 2


def test_removing_a_clinic_where_the_practitioner_still_works_is_refused(admin, london_and_new_york):
    practitioner, london, new_york = london_and_new_york
    assert put_week(admin, practitioner["id"], [hours(0, "09:00", "17:00", new_york["id"])]).status_code == 200
    response = admin.patch(f"/v1/practitioners/{practitioner['id']}", json={"clinic_ids": [london["id"]]})
    assert "clinic_ids" in field_errors(response)
    after = admin.get(f"/v1/practitioners/{practitioner['id']}").get_json()
    assert sorted(after["clinic_ids"]) == sorted([london["id"], new_york["id"]])


def test_removing_a_clinic_without_hours_there_is_allowed(admin, london_and_new_york):
    practitioner, london, _new_york = london_and_new_york
    assert put_week(admin, practitioner["id"], [hours(0, "09:00", "17:00", london["id"])]).status_code == 200
    response = admin.patch(f"/v1/practitioners/{practitioner['id']}", json={"clinic_ids": [london["id"]]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["clinic_ids"] == [london["id"]]


# --------------------------------------------------------------------------- time off


@pytest.fixture
def london_practitioner(admin):
    """Works at two clinics, both in Europe/London."""
    soho = admin.make_clinic(name="Soho", timezone="Europe/London")
    camden = admin.make_clinic(name="Camden", timezone="Europe/London")
    return admin.make_practitioner([soho["id"], camden["id"]])


def post_time_off(caller, practitioner_id, starts_at, ends_at, **extra):
    return caller.post(
        f"/v1/practitioners/{practitioner_id}/time-off", json={"starts_at": starts_at, "ends_at": ends_at, **extra}
    )


@pytest.mark.parametrize(
    "starts_at,ends_at,field",
    [
        ("2030-07-01T09:00:00", "2030-07-01T17:00:00+01:00", "starts_at"),
        ("2030-07-01T09:00:00+01:00", "2030-07-01T17:00:00", "ends_at"),
        ("2030-07-01", "2030-07-02T00:00:00Z", "starts_at"),
        ("tomorrow", "2030-07-02T00:00:00Z", "starts_at"),
    ],
)
def test_time_off_needs_instants_with_an_offset(admin, london_practitioner, starts_at, ends_at, field):
    response = post_time_off(admin, london_practitioner["id"], starts_at, ends_at)
    assert field in field_errors(response)


@pytest.mark.parametrize(
    "ends_at",
    [
        "2030-07-01T09:00:00+01:00",
        "2030-07-01T08:59:00+01:00",
        "2030-07-01T08:00:00Z",  # the same instant as the start
        "2030-07-01T09:30:00+02:00",  # a later wall clock, an earlier instant
    ],
)
def test_time_off_must_end_after_it_starts(admin, london_practitioner, ends_at):
    response = post_time_off(admin, london_practitioner["id"], "2030-07-01T09:00:00+01:00", ends_at)
    assert "ends_at" in field_errors(response)


def test_refused_time_off_writes_nothing(admin, london_practitioner):
    post_time_off(admin, london_practitioner["id"], "2030-07-01T09:00:00+01:00", "2030-07-01T09:00:00+01:00")
    assert admin.get(f"/v1/practitioners/{london_practitioner['id']}/time-off").get_json()["data"] == []


def test_time_off_is_shown_with_the_clinics_offset(admin, london_practitioner):
    summer = post_time_off(admin, london_practitioner["id"], "2030-07-01T08:00:00Z", "2030-07-01T16:00:00Z")
    winter = post_time_off(admin, london_practitioner["id"], "2030-01-07T09:00:00-05:00", "2030-01-07T12:00:00-05:00")
    assert summer.status_code == winter.status_code == 201, (summer.get_json(), winter.get_json())
    assert summer.get_json()["starts_at"] == "2030-07-01T09:00:00+01:00"
    assert summer.get_json()["ends_at"] == "2030-07-01T17:00:00+01:00"
    assert winter.get_json()["starts_at"] == "2030-01-07T14:00:00+00:00"
    listed = admin.get(f"/v1/practitioners/{london_practitioner['id']}/time-off").get_json()["data"]
    assert sorted(t["starts_at"] for t in listed) == ["2030-01-07T14:00:00+00:00", "2030-07-01T09:00:00+01:00"]


# --------------------------------------------------------------------------- treatment types

MICRONEEDLING_DEFAULTS = {
    "numbing_minutes": 30,
    "prep_minutes": 5,
    "procedure_minutes": 30,
    "aftercare_minutes": 10,
    "turnover_minutes": 10,
    "min_interval_days": 28,
    "recommended_interval_days": 42,
    "max_sessions": 6,
    "allowed_areas": ["face", "neck", "decolletage", "abdomen", "thighs"],
    "required_capability": "needling",
}


def post_type(caller, kind="microneedling", **fields):
    return caller.post("/v1/treatment-types", json={"name": "Type", "kind": kind, **fields})


def test_microneedling_takes_the_default_timings(admin):
    created = admin.make_treatment_type("microneedling")
    assert {k: created[k] for k in MICRONEEDLING_DEFAULTS} == MICRONEEDLING_DEFAULTS


def test_review_takes_its_own_defaults(admin):
    created = admin.make_treatment_type("review")
    assert (created["procedure_minutes"], created["numbing_minutes"], created["turnover_minutes"]) == (15, 0, 0)
    assert created["min_interval_days"] is None and created["max_sessions"] is None


def test_consultation_has_no_interval_or_cap(admin):
    created = admin.make_treatment_type("consultation")
    assert created["numbing_minutes"] == 0
    assert (created["min_interval_days"], created["recommended_interval_days"], created["max_sessions"]) == (
        None,
        None,
        None,
    )


def test_given_timings_override_the_defaults(admin):
    created = admin.make_treatment_type(procedure_minutes=45, numbing_minutes=40)
    assert (created["procedure_minutes"], created["numbing_minutes"], created["prep_minutes"]) == (45, 40, 5)


@pytest.mark.parametrize("kind", ["laser", "Microneedling", ""])
def test_kind_must_be_one_of_the_three(admin, kind):
    assert "kind" in field_errors(post_type(admin, kind))


@pytest.mark.parametrize("minutes", [19, 61, 0])
def test_microneedling_numbing_outside_20_to_60_is_refused(admin, minutes):
    assert "numbing_minutes" in field_errors(post_type(admin, numbing_minutes=minutes))


@pytest.mark.parametrize("minutes", [20, 60])
def test_microneedling_numbing_at_the_bounds_is_accepted(admin, minutes):
    assert admin.make_treatment_type(numbing_minutes=minutes)["numbing_minutes"] == minutes


@pytest.mark.parametrize("kind", ["consultation", "review"])
def test_numbing_must_be_zero_for_consultation_and_review(admin, kind):
    assert "numbing_minutes" in field_errors(post_type(admin, kind, numbing_minutes=20))


def test_prep_must_be_shorter_than_numbing(admin):
    assert "prep_minutes" in field_errors(post_type(admin, numbing_minutes=20, prep_minutes=20))
    assert admin.make_treatment_type(numbing_minutes=20, prep_minutes=15)["prep_minutes"] == 15


def test_min_interval_below_28_days_is_refused(admin):
    assert "min_interval_days" in field_errors(post_type(admin, min_interval_days=27))
    assert admin.make_treatment_type(min_interval_days=28, recommended_interval_days=28)["min_interval_days"] == 28


def test_recommended_interval_below_the_minimum_is_refused(admin):
    errors = field_errors(post_type(admin, min_interval_days=35, recommended_interval_days=30))
    assert "recommended_interval_days" in errors


@pytest.mark.parametrize(
    "field,value",
    [
        ("min_interval_days", 28),
        ("recommended_interval_days", 42),
        ("max_sessions", 4),
        ("consultation_valid_days", 180),
    ],
)
def test_interval_fields_must_be_null_for_a_consultation(admin, field, value):
    assert field in field_errors(post_type(admin, "consultation", **{field: value}))


@pytest.mark.parametrize("area", ["hands", "underarms", "elbows", "Face"])
def test_allowed_areas_refuses_forbidden_and_unknown_areas(admin, area):
    assert "allowed_areas" in field_errors(post_type(admin, allowed_areas=["face", area]))


def test_allowed_areas_must_not_repeat_or_be_empty(admin):
    assert "allowed_areas" in field_errors(post_type(admin, allowed_areas=["face", "face"]))
    assert "allowed_areas" in field_errors(post_type(admin, allowed_areas=[]))


@pytest.mark.parametrize("field", ["procedure_minutes", "numbing_minutes", "max_sessions"])
def test_timings_must_be_integers(admin, field):
    assert field in field_errors(post_type(admin, **{field: "thirty"}))


@pytest.mark.parametrize("capability", ["Needling", "needling room", "needling\n"])
def test_required_capability_must_be_a_room_capability_word(admin, capability):
    assert "required_capability" in field_errors(post_type(admin, required_capability=capability))


def test_required_capability_may_be_any_lowercase_word_or_null(admin):
    assert admin.make_treatment_type(required_capability="dermapen_4")["required_capability"] == "dermapen_4"
    assert admin.make_treatment_type("review", required_capability=None)["required_capability"] is None


def test_kind_cannot_change_on_patch(admin):
    created = admin.make_treatment_type("microneedling")
    errors = field_errors(admin.patch(f"/v1/treatment-types/{created['id']}", json={"kind": "review"}))
    assert "kind" in errors
    assert admin.get(f"/v1/treatment-types/{created['id']}").get_json()["kind"] == "microneedling"


def test_patch_validates_the_merged_treatment_type(admin):
    created = admin.make_treatment_type()  # recommended 42
    path = f"/v1/treatment-types/{created['id']}"
    assert "recommended_interval_days" in field_errors(admin.patch(path, json={"min_interval_days": 50}))
    assert admin.get(path).get_json()["min_interval_days"] == 28
    response = admin.patch(path, json={"min_interval_days": 50, "recommended_interval_days": 56})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["prep_minutes"] == 5


def test_patch_keeps_consultation_rules(admin):
    created = admin.make_treatment_type("consultation")
    response = admin.patch(f"/v1/treatment-types/{created['id']}", json={"numbing_minutes": 30})
    assert "numbing_minutes" in field_errors(response)


def test_refused_treatment_type_writes_nothing(admin):
    post_type(admin, numbing_minutes=61)
    assert admin.get("/v1/treatment-types").get_json()["data"] == []


# --------------------------------------------------------------------------- patients


def post_patient(caller, **fields):
    return caller.post("/v1/patients", json={"name": "Pat", **fields})


@pytest.mark.parametrize("codes", [["acne"], ["rosacea", "Rosacea"], ["sunburn"]])
def test_contraindications_come_from_the_vocabulary(admin, codes):
    assert "contraindications" in field_errors(post_patient(admin, contraindications=codes))


def test_every_contraindication_of_the_vocabulary_is_accepted(admin):
    patient = admin.make_patient(contraindications=list(CONTRAINDICATIONS))
    assert sorted(patient["contraindications"]) == sorted(CONTRAINDICATIONS)


def test_contraindications_must_not_repeat(admin):
    response = post_patient(admin, contraindications=["rosacea", "rosacea"])
    assert "contraindications" in field_errors(response)


@pytest.mark.parametrize("email", ["pat", "pat@", "pat@@example.com"])
def test_patient_email_is_validated(admin, email):
    assert "email" in field_errors(post_patient(admin, email=email))


@pytest.mark.parametrize(
    "phone",
    [
        "07700900123",  # national, and this organization has no clinic to say which country
        "+44 7700 900123",  # Ofcom's drama range for mobiles: not a number libphonenumber calls valid
        "+0447700900123",
        "+44",
        "+4477009001234567",
        "+442079460123\n",  # a valid number, but a newline is not what a person types
        "+4\u0664\u0664\u0667\u0667\u0660\u0660\u0669\u0660\u0660",  # Arabic-Indic digits
    ],
)
def test_patient_phone_must_be_e164(admin, phone):
    assert "phone" in field_errors(post_patient(admin, phone=phone))


def test_patient_accepts_an_e164_phone(admin):
    assert admin.make_patient(phone="+442079460123")["phone"] == "+442079460123"


def test_date_of_birth_may_not_be_in_the_future(admin):
    future = (date.today() + timedelta(days=2)).isoformat()
    assert "date_of_birth" in field_errors(post_patient(admin, date_of_birth=future))
    assert admin.make_patient(date_of_birth="1990-05-17")["date_of_birth"] == "1990-05-17"


def test_patient_patch_validates_fields(admin):
    patient = admin.make_patient()
    path = f"/v1/patients/{patient['id']}"
    assert "phone" in field_errors(admin.patch(path, json={"phone": "12345"}))
    assert "contraindications" in field_errors(admin.patch(path, json={"contraindications": ["flu"]}))
    assert admin.get(path).get_json()["phone"] is None


def test_assessed_by_is_recorded_with_each_contraindication(admin):
    patient = admin.make_patient(contraindications=["rosacea"], assessed_by="Dr Okafor")
    [record] = patient["contraindication_history"]
    assert (record["code"], record["recorded_by"], record["resolved_at"]) == ("rosacea", "Dr Okafor", None)
    assert "assessed_by" not in patient


def test_removed_contraindication_stays_in_history_as_resolved(admin):
    patient = admin.make_patient(contraindications=["rosacea", "active_acne"], assessed_by="Dr Okafor")
    path = f"/v1/patients/{patient['id']}"
    response = admin.patch(path, json={"contraindications": ["active_acne"], "assessed_by": "Dr Patel"})
    assert response.status_code == 200, response.get_json()
    after = admin.get(path).get_json()
    assert after["contraindications"] == ["active_acne"]
    history = {r["code"]: r for r in after["contraindication_history"]}
    assert history.keys() == {"rosacea", "active_acne"}
    assert history["rosacea"]["resolved_at"] is not None
    assert history["rosacea"]["resolved_by"] == "Dr Patel"
    assert history["rosacea"]["recorded_by"] == "Dr Okafor"
    assert history["active_acne"]["resolved_at"] is None


def test_patch_without_contraindications_keeps_them(admin):
    patient = admin.make_patient(contraindications=["rosacea"])
    response = admin.patch(f"/v1/patients/{patient['id']}", json={"name": "Pat Jones"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["contraindications"] == ["rosacea"]


def test_refused_patient_writes_nothing(admin, db):
    assert post_patient(admin, contraindications=["rosacea", "flu"]).status_code == 422
    assert admin.get("/v1/patients").get_json()["data"] == []
    assert count(db, Patient, admin.organization_id) == 0


# --------------------------------------------------------------------------- courses


@pytest.fixture
def patient(admin):
    return admin.make_patient()


def post_course(caller, patient_id, treatment_type_id, **fields):
    return caller.post(
        f"/v1/patients/{patient_id}/courses",
        json={"treatment_type_id": treatment_type_id, "indication": "acne_scars", **fields},
    )


@pytest.mark.parametrize("indication", ["wrinkles", "Acne_Scars", ""])
def test_course_indication_comes_from_the_vocabulary(admin, patient, indication):
    treatment_type = admin.make_treatment_type()
    response = post_course(admin, patient["id"], treatment_type["id"], indication=indication)
    assert "indication" in field_errors(response)


@pytest.mark.parametrize(
    "indication,cap", [("acne_scars", 4), ("other_scars", 4), ("stretch_marks", 6), ("thermal_burns", 6)]
)
def test_course_cap_defaults_from_the_indication(admin, patient, indication, cap):
    treatment_type = admin.make_treatment_type()  # cap 6
    course = admin.make_course(patient["id"], treatment_type["id"], indication=indication)
    assert course["max_sessions"] == cap
    assert course["sessions_completed"] == 0


def test_ageing_course_is_capped_per_365_days(admin, patient):
    course = admin.make_course(patient["id"], admin.make_treatment_type()["id"], indication="ageing")
    assert course["max_sessions_per_365_days"] == 2


def test_course_cap_may_not_exceed_the_treatment_types_cap(admin, patient):
    treatment_type = admin.make_treatment_type(max_sessions=5)
    response = post_course(admin, patient["id"], treatment_type["id"], max_sessions=6)
    assert "max_sessions" in field_errors(response)
    assert admin.make_course(patient["id"], treatment_type["id"], max_sessions=5)["max_sessions"] == 5


def test_default_course_cap_is_bounded_by_the_treatment_types_cap(admin, patient):
    treatment_type = admin.make_treatment_type(max_sessions=3)
    course = admin.make_course(patient["id"], treatment_type["id"], indication="stretch_marks")
    assert course["max_sessions"] == 3


@pytest.mark.parametrize("cap", [0, -1, 21])
def test_course_cap_must_be_1_to_20(admin, patient, cap):
    response = post_course(admin, patient["id"], admin.make_treatment_type()["id"], max_sessions=cap)
    assert "max_sessions" in field_errors(response)


@pytest.mark.parametrize("kind", ["consultation", "review"])
def test_course_on_a_non_microneedling_type_is_refused(admin, patient, kind):
    response = post_course(admin, patient["id"], admin.make_treatment_type(kind)["id"])
    assert "treatment_type_id" in field_errors(response)


def test_course_on_an_unknown_treatment_type_is_refused(admin, patient):
    assert "treatment_type_id" in field_errors(post_course(admin, patient["id"], "tt_nope"))


def test_course_on_another_organizations_treatment_type_is_refused(admin, other, patient):
    theirs = other.make_treatment_type()
    assert "treatment_type_id" in field_errors(post_course(admin, patient["id"], theirs["id"]))


def test_course_patch_may_not_raise_the_cap_past_the_treatment_type(admin, patient):
    course = admin.make_course(patient["id"], admin.make_treatment_type()["id"])
    path = f"/v1/courses/{course['id']}"
    assert "max_sessions" in field_errors(admin.patch(path, json={"max_sessions": 7}))
    assert admin.get(path).get_json()["max_sessions"] == 4
    assert admin.patch(path, json={"max_sessions": 6}).get_json()["max_sessions"] == 6


def test_course_patch_cannot_move_to_another_treatment_type(admin, patient):
    course = admin.make_course(patient["id"], admin.make_treatment_type()["id"])
    other_type = admin.make_treatment_type(name="Other")
    response = admin.patch(f"/v1/courses/{course['id']}", json={"treatment_type_id": other_type["id"]})
    assert "treatment_type_id" in field_errors(response)


def test_course_status_comes_from_the_vocabulary(admin, patient):
    course = admin.make_course(patient["id"], admin.make_treatment_type()["id"])
    assert "status" in field_errors(admin.patch(f"/v1/courses/{course['id']}", json={"status": "paused"}))


def test_refused_course_writes_nothing(admin, patient, db):
    treatment_type = admin.make_treatment_type()
    assert post_course(admin, patient["id"], treatment_type["id"], max_sessions=7).status_code == 422
    assert admin.get(f"/v1/patients/{patient['id']}/courses").get_json()["data"] == []
    assert count(db, Course, admin.organization_id) == 0


# --------------------------------------------------------------------------- the range of instants and dates
# One range for every instant and date the API reads (api/base.py, booking/domain/clock.py): years 1900 to 2200.
# Outside it, arithmetic on an instant (to UTC, a day later, a window's end) overflows Python's datetime.

OUT_OF_RANGE_INSTANTS = [
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:00:00-05:00",
    "1899-12-31T23:59:59+00:00",
    "2201-01-01T00:00:00+00:00",
]
OUT_OF_RANGE_DATES = ["0001-01-01", "1899-12-31", "2201-01-01", "9999-12-31"]


@pytest.fixture
def every_object(admin):
    from .test_tenancy import build_world

    return build_world(admin)


def instant_bodies(ids: dict) -> list[tuple[str, str, dict, str]]:
    """(method, path, a valid body, the instant field to break) of every body that reads an instant."""
    from .test_tenancy import BODIES, body_for, fill

    found = [
        (method, fill(rule, ids), body_for(method, rule, ids), name)
        for (method, rule), body in BODIES.items()
        if method != "GET" and isinstance(body, dict)
        for name in body
        if name.endswith("_at")
    ]
    assert {name for *_, name in found} >= {"starts_at", "ends_at", "performed_at"}, found
    return found


def instant_filters(caller, ids: dict) -> list[tuple[str, str]]:
    """(path, query parameter) of every collection filter and search bound that reads an instant."""
    from .test_tenancy import LIST_ROUTES, fill

    syncable = [fill(rule, ids) for rule in LIST_ROUTES if "<" not in rule or "_id>" in rule]
    found = [
        (path, "updated_since")
        for path in syncable  # the collections that take updated_since
        if caller.get(path, query_string={"updated_since": "2030-01-01T00:00:00Z"}).status_code == 200
    ]
    found += [(f"/v1/practitioners/{ids['practitioner_id']}/time-off", name) for name in ("start", "end")]
    found += [(path, name) for path in ("/v1/appointments", "/v1/follow-ups") for name in ("start", "end")]
    assert len(found) > 10, found
    return found


def test_an_instant_outside_1900_to_2200_in_any_body_is_a_422_naming_it(admin, every_object):
    for method, path, body, name in instant_bodies(every_object):
        for value in OUT_OF_RANGE_INSTANTS:
            response = getattr(admin, method.lower())(path, json={**body, name: value})
            errors = field_errors(response)
            assert name in errors, (method, path, value, errors)
            assert "1900" in str(errors[name]) and "2200" in str(errors[name]), errors


def test_an_instant_outside_1900_to_2200_in_any_filter_is_a_422_naming_it(admin, every_object):
    for path, name in instant_filters(admin, every_object):
        for value in OUT_OF_RANGE_INSTANTS:
            errors = field_errors(admin.get(path, query_string={name: value}))
            assert name in errors, (path, value, errors)


@pytest.mark.parametrize("value", OUT_OF_RANGE_INSTANTS)
def test_availability_bounds_outside_the_range_are_a_422(admin, every_object, value):
    query = {"treatment_type_id": every_object["treatment_type_id"], "clinic_id": every_object["clinic_id"]}
    for name, other in (("start", "end"), ("end", "start")):
        response = admin.get("/v1/availability", query_string={**query, name: value, other: "2030-01-07T00:00:00Z"})
        assert "1900" in str(field_errors(response).get(name)), (name, value)


@pytest.mark.parametrize("value", ["1900-01-01T00:00:00+00:00", "2200-12-31T23:00:00-05:00"])
def test_instants_at_the_ends_of_the_range_are_accepted(admin, every_object, value):
    assert admin.get("/v1/clinics", query_string={"updated_since": value}).status_code == 200
    assert admin.get("/v1/appointments", query_string={"start": value, "end": value}).status_code == 200


@pytest.mark.parametrize("value", OUT_OF_RANGE_DATES)
def test_a_date_of_birth_outside_the_range_is_a_422(admin, value):
    assert "date_of_birth" in field_errors(admin.post("/v1/patients", json={"name": "Old", "date_of_birth": value}))


@pytest.mark.parametrize(
    "zone, day",
    [
        ("Europe/London", "9999-12-31"),
        ("Asia/Tokyo", "0001-01-01"),
        ("America/New_York", "9999-12-31"),
        ("Pacific/Kiritimati", "2201-01-01"),
    ],
)
def test_a_closure_outside_the_range_is_a_422_and_availability_carries_on(admin, clock, zone, day):
    from ..booking_world import build_world

    world = build_world(admin, clock, timezone_name=zone)
    path = f"/v1/clinics/{world.clinic['id']}"
    closure = {"start_date": day, "end_date": day}
    errors = field_errors(admin.patch(path, json={"closures": [closure]}))
    assert "start_date" in errors["closures"]["0"] and "end_date" in errors["closures"]["0"], errors
    assert "closures" in field_errors(
        admin.post("/v1/clinics", json={"name": "Far", "timezone": zone, "closures": [closure]})
    )
    assert admin.get(path).get_json()["closures"] == []
    window = {"treatment_type_id": world.consultation["id"], "start": world.at(1, 0), "end": world.at(2, 0)}
    for query in ({**window, "clinic_id": world.clinic["id"]}, window):  # the clinic, and the whole organization
        response = admin.get("/v1/availability", query_string=query)
        assert response.status_code == 200 and response.get_json()["data"], response.get_json()
    slot = response.get_json()["data"][0]
    hold = {k: slot[k] for k in ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")}
    assert admin.post("/v1/holds", json={**hold, "patient_id": world.patient["id"]}).status_code == 201


@pytest.mark.parametrize(
    "zone, written, shown",
    [
        # Amsterdam kept local mean time (+00:19:32) until 1937, Monrovia (-00:44:30) until 1972.
        ("Europe/Amsterdam", "1930-06-02T10:00:00+00:00", "1930-06-02T10:00:00+00:00"),
        ("Africa/Monrovia", "1960-06-02T10:00:00+00:00", "1960-06-02T10:00:00+00:00"),
        # Whole-minute offsets, historic or not, stay on the clinic's clock.
        ("Europe/Amsterdam", "1939-06-02T10:00:00+00:00", "1939-06-02T11:20:00+01:20"),
        ("Africa/Monrovia", "1980-06-02T10:00:00+00:00", "1980-06-02T10:00:00+00:00"),
        ("Europe/London", "2027-07-02T10:00:00+00:00", "2027-07-02T11:00:00+01:00"),
    ],
)
def test_an_instant_shown_on_a_clinics_clock_is_always_rfc_3339(admin, clock, zone, written, shown):
    """A zone's offset before standard time had seconds, which RFC 3339 cannot write: such an
    instant is shown in UTC rather than moved to a rounded offset."""
    from ..booking_world import build_world

    world = build_world(admin, clock, timezone_name=zone)
    path = f"/v1/practitioners/{world.practitioner['id']}/time-off"
    end = (datetime.fromisoformat(written) + timedelta(hours=1)).isoformat()
    created = admin.create(path, {"starts_at": written, "ends_at": end, "reason": "history"})
    listed = admin.get(path, query_string={"start": "1900-01-01T00:00:00Z"}).get_json()["data"]
    for item in (created, *listed):
        value = item["starts_at"].replace("Z", "+00:00")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d", value), value
        assert datetime.fromisoformat(value) == datetime.fromisoformat(written)
    assert created["starts_at"].replace("Z", "+00:00") == shown
