"""The front desk's day sheet: every visit of a clinic's local date with its phases, staff keys only."""

from __future__ import annotations

from datetime import datetime

from ..booking_world import patient
from ..helpers import assert_problem
from .test_publishable_keys import publishable


def sheet(caller, clinic_id, day):
    response = caller.get(f"/v1/clinics/{clinic_id}/day-sheet", query_string={"date": day})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def spans(visit, *names, busy=None):
    return [
        (datetime.fromisoformat(p["starts_at"]), datetime.fromisoformat(p["ends_at"]))
        for p in visit["phases"]
        if (not names or p["name"] in names) and (busy is None or p["practitioner_busy"] is busy)
    ]


def test_two_patients_interleaved_in_one_practitioners_numbing_gap(admin, world):
    """A arrives at 10:00 (cream 10:00-10:05, numbing until 10:30, needling 10:30-11:00, aftercare to
    11:10); B arrives at 10:15, in A's numbing gap, has the cream then, and numbs until 11:15, once
    A is done: one practitioner, two rooms, both on the sheet with their phases."""
    a, b = patient(world), patient(world)
    first = world.book(patient_id=a["id"], starts_at=world.at(1, 10))
    second = world.book(
        patient_id=b["id"],
        room_id=world.rooms[1]["id"],
        starts_at=world.at(1, 10, 15),
        procedure_starts_at=world.at(1, 11, 15),
    )
    world.book(patient_id=patient(world)["id"], starts_at=world.at(2, 10))  # another day: not on it
    cancelled = world.book(patient_id=patient(world)["id"], starts_at=world.at(1, 14))
    assert (
        admin.post(f"/v1/appointments/{cancelled['id']}/cancel", json={"reason": "clinic_request"}).status_code == 200
    )

    day = sheet(admin, world.clinic["id"], "2027-01-05")
    assert (day["date"], day["timezone"]) == ("2027-01-05", "Europe/London")
    assert (day["starts_at"], day["ends_at"]) == ("2027-01-05T00:00:00+00:00", "2027-01-06T00:00:00+00:00")
    assert [v["appointment_id"] for v in day["visits"]] == [first["id"], second["id"]]
    va, vb = day["visits"]
    assert (va["patient"]["name"], vb["patient"]["name"]) == (a["name"], b["name"])
    assert (
        va["practitioner"] == vb["practitioner"] == {"id": world.practitioner["id"], "name": world.practitioner["name"]}
    )
    assert (va["room"]["name"], vb["room"]["name"]) == ("Room 1", "Room 2")
    assert va["treatment_type"]["kind"] == "microneedling"
    assert [(p["name"], p["starts_at"][11:16], p["ends_at"][11:16], p["practitioner_busy"]) for p in va["phases"]] == [
        ("arrival", "10:00", "10:00", False),
        ("numbing_application", "10:00", "10:05", True),
        ("numbing", "10:05", "10:30", False),
        ("needling", "10:30", "11:00", True),
        ("aftercare", "11:00", "11:10", True),
        ("turnover", "11:10", "11:20", False),
    ]
    # B's cream goes on inside A's numbing, and the practitioner is never needed by both at once.
    ((gap_start, gap_end),) = spans(va, "numbing")
    ((cream_start, cream_end),) = spans(vb, "numbing_application")
    assert gap_start <= cream_start < cream_end <= gap_end
    for start_a, end_a in spans(va, busy=True):
        for start_b, end_b in spans(vb, busy=True):
            assert end_a <= start_b or end_b <= start_a


def test_the_day_sheet_runs_over_the_clinics_local_date_across_a_dst_change(admin, world):
    """Sunday 28 March 2027 in London has 23 hours (01:00 GMT becomes 02:00 BST): the sheet runs
    from 00:00 GMT to 00:00 BST on the 29th, shows each visit on the local clock, and leaves out the
    00:15 BST visit of Monday the 29th, which is still the 28th in UTC."""
    every_day = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
    assert admin.patch(f"/v1/clinics/{world.clinic['id']}", json={"opening_hours": every_day}).status_code == 200
    hours = [{"clinic_id": world.clinic["id"], **h} for h in every_day]
    assert admin.put(f"/v1/practitioners/{world.practitioner['id']}/working-hours", json=hours).status_code == 200
    consult = world.consultation["id"]
    at = {
        "saturday_late": "2027-03-27T23:30:00+00:00",
        "after_midnight": "2027-03-28T00:30:00+00:00",
        "morning": "2027-03-28T10:00:00+01:00",
        "monday_early": "2027-03-29T00:15:00+01:00",
    }
    booked = {
        name: world.book(patient_id=patient(world)["id"], treatment_type_id=consult, starts_at=start)
        for name, start in at.items()
    }
    day = sheet(admin, world.clinic["id"], "2027-03-28")
    assert (day["starts_at"], day["ends_at"]) == ("2027-03-28T00:00:00+00:00", "2027-03-29T00:00:00+01:00")
    assert [v["appointment_id"] for v in day["visits"]] == [booked["after_midnight"]["id"], booked["morning"]["id"]]
    assert [v["starts_at"] for v in day["visits"]] == ["2027-03-28T00:30:00+00:00", "2027-03-28T10:00:00+01:00"]
    assert day["visits"][1]["phases"][0] == {
        "name": "arrival",
        "starts_at": "2027-03-28T10:00:00+01:00",
        "ends_at": "2027-03-28T10:00:00+01:00",
        "practitioner_busy": False,
        "place": "room",
    }
    monday = sheet(admin, world.clinic["id"], "2027-03-29")
    assert [v["appointment_id"] for v in monday["visits"]] == [booked["monday_early"]["id"]]
    assert [v["appointment_id"] for v in sheet(admin, world.clinic["id"], "2027-03-27")["visits"]] == [
        booked["saturday_late"]["id"]
    ]


def test_with_a_numbing_area_the_patient_numbs_there(admin, clock):
    from ..booking_world import build_world

    world = build_world(admin, clock, numbing_area_capacity=2)
    world.consulted()
    world.book(starts_at=world.at(1, 10))
    (visit,) = sheet(admin, world.clinic["id"], "2027-01-05")["visits"]
    assert {p["name"]: p["place"] for p in visit["phases"]} == {
        "arrival": "numbing_area",
        "numbing_application": "numbing_area",
        "numbing": "numbing_area",
        "needling": "room",
        "aftercare": "room",
        "turnover": "room",
    }


def test_the_day_sheet_is_a_staff_keys(admin, world):
    frontend = admin.with_scopes("read", channel="frontend")
    assert_problem(frontend.get(f"/v1/clinics/{world.clinic['id']}/day-sheet?date=2027-01-05"), 403, "forbidden")
    assert_problem(
        publishable(admin).get(f"/v1/clinics/{world.clinic['id']}/day-sheet?date=2027-01-05"), 403, "forbidden"
    )
    assert_problem(admin.get(f"/v1/clinics/{world.clinic['id']}/day-sheet"), 422, "validation_error")
    assert_problem(admin.get(f"/v1/clinics/{world.clinic['id']}/day-sheet?date=2027-13-01"), 422, "validation_error")
    assert_problem(admin.get("/v1/clinics/cln_nope/day-sheet?date=2027-01-05"), 404, "not_found")
