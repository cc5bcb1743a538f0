"""POST/GET /v1/waitlist and GET/DELETE /v1/waitlist/{id}: joining, reading and leaving (issue 17).

The scheduler's offers are pinned in tests/services/test_waitlist.py; here the HTTP surface:
every invalid entry is a 422 naming its field and writes nothing, lists page like the others.
"""

from __future__ import annotations

import pytest

from booking.integrations import webhooks
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..booking_world import build_world, patient
from ..helpers import assert_problem
from .test_calendars import events as ical_events
from .test_calendars import issue, read
from .test_fhir import fhir_get, fid
from .test_fhir import slots as fhir_slots


def body(world, **overrides) -> dict:
    return {
        "patient_id": world.patient["id"],
        "treatment_type_id": world.microneedling["id"],
        "clinic_ids": [world.clinic["id"]],
        "start": world.at(1, 9),
        "end": world.at(20, 17),
        **overrides,
    }


def listed(caller, **params) -> dict:
    response = caller.get("/v1/waitlist", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_joining_answers_the_entry_with_its_preferences(world):
    made = world.caller.create(
        "/v1/waitlist", body(world, weekdays=[3, 1, 3], time_from="16:00", time_to="24:00", practitioner_id=None)
    )
    assert made["status"] == "waiting" and made["offer"] is None and made["offers_made"] == 0
    assert made["clinic_ids"] == [world.clinic["id"]]
    assert (made["weekdays"], made["time_from"], made["time_to"]) == ([1, 3], "16:00", "24:00")
    assert (made["start"], made["end"]) == (world.at(1, 9), world.at(20, 17))
    assert made["timezone"] == "Europe/London" and made["joined_at"] == world.clock.now.isoformat()
    response = world.caller.get(f"/v1/waitlist/{made['id']}")
    assert response.status_code == 200 and response.get_json() == made
    assert response.headers["ETag"]


def test_a_window_starting_in_the_past_starts_now_and_the_whole_chain_shows_utc(world):
    made = world.caller.create("/v1/waitlist", body(world, clinic_ids=[], start=world.at(-3)))
    assert made["clinic_ids"] == [] and made["timezone"] == "UTC"
    assert made["start"] == world.clock.now.isoformat()


def _other_patient_course(world) -> str:
    return world.caller.make_course(patient(world)["id"], world.microneedling["id"])["id"]


INVALID = {
    "no end": (lambda w: {"end": None}, "end"),
    "naive end": (lambda w: {"end": "2027-01-20T10:00:00"}, "end"),
    "end before start": (lambda w: {"end": w.at(1, 8)}, "end"),
    "end in the past": (lambda w: {"start": w.at(-5), "end": w.at(-1)}, "end"),
    "window too long": (lambda w: {"end": w.at(400)}, "end"),
    "unknown patient": (lambda w: {"patient_id": "pat_nope"}, "patient_id"),
    "unknown treatment type": (lambda w: {"treatment_type_id": "trt_nope"}, "treatment_type_id"),
    "unknown clinic": (lambda w: {"clinic_ids": [w.clinic["id"], "cln_nope"]}, "clinic_ids"),
    "unknown practitioner": (lambda w: {"practitioner_id": "prc_nope"}, "practitioner_id"),
    "weekday 0": (lambda w: {"weekdays": [0]}, "weekdays"),
    "weekday 8": (lambda w: {"weekdays": [8]}, "weekdays"),
    "time window backwards": (lambda w: {"time_from": "15:00", "time_to": "14:00"}, "time_to"),
    "bad time": (lambda w: {"time_from": "25:00"}, "time_from"),
    "unknown field": (lambda w: {"clinic_id": w.clinic["id"]}, "clinic_id"),
    "another patient's course": (lambda w: {"course_id": _other_patient_course(w)}, "course_id"),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_an_invalid_entry_is_a_422_naming_the_field_and_writes_nothing(world, case):
    change, field = INVALID[case]
    payload = {k: v for k, v in {**body(world), **change(world)}.items() if v is not None}
    problem = assert_problem(world.caller.post("/v1/waitlist", json=payload), 422, "validation_error")
    assert field in problem["errors"], problem
    assert listed(world.caller)["data"] == []


def test_a_practitioner_must_be_qualified_and_work_at_a_clinic_named(world):
    unqualified = world.caller.make_practitioner([world.clinic["id"]], name="Dr Consult",
                                                 treatment_type_ids=[world.consultation["id"]])  # fmt: skip
    problem = assert_problem(
        world.caller.post("/v1/waitlist", json=body(world, practitioner_id=unqualified["id"])), 422, "validation_error"
    )
    assert "qualified" in str(problem["errors"]["practitioner_id"])
    elsewhere = world.caller.make_clinic(name="Leeds")
    problem = assert_problem(
        world.caller.post(
            "/v1/waitlist", json=body(world, clinic_ids=[elsewhere["id"]], practitioner_id=world.practitioner["id"])
        ),
        422,
        "validation_error",
    )
    assert "none of the clinics" in str(problem["errors"]["practitioner_id"])
    assert listed(world.caller)["data"] == []


def test_another_organizations_ids_read_like_unknown_ones(world, other):
    foreign = other.post("/v1/waitlist", json=body(world))
    problem = assert_problem(foreign, 422, "validation_error")
    assert {"patient_id", "treatment_type_id", "clinic_ids"} <= problem["errors"].keys()
    assert listed(other)["data"] == [] and listed(world.caller)["data"] == []


def test_the_list_pages_and_filters(world):
    second = patient(world)
    made = [world.caller.create("/v1/waitlist", body(world)) for _ in range(2)]
    made.append(world.caller.create("/v1/waitlist", body(world, patient_id=second["id"])))
    first_page = listed(world.caller, limit=2)
    assert [e["id"] for e in first_page["data"]] == [e["id"] for e in made[:2]]
    rest = listed(world.caller, limit=2, cursor=first_page["next_cursor"])
    assert [e["id"] for e in rest["data"]] == [made[2]["id"]] and rest["next_cursor"] is None
    assert [e["id"] for e in listed(world.caller, patient_id=second["id"])["data"]] == [made[2]["id"]]
    assert len(listed(world.caller, status="waiting")["data"]) == 3
    assert listed(world.caller, status="offered")["data"] == []
    assert world.caller.delete(f"/v1/waitlist/{made[0]['id']}").status_code == 204
    assert [e["id"] for e in listed(world.caller)["data"]] == [e["id"] for e in made[1:]]  # gone from the list
    for status in ("nope", "cancelled"):
        assert_problem(world.caller.get("/v1/waitlist", query_string={"status": status}), 422, "validation_error")


def test_leaving_honours_if_match(world):
    made = world.caller.create("/v1/waitlist", body(world))
    stale = world.caller.delete(f"/v1/waitlist/{made['id']}", headers={"If-Match": '"nope"'})
    assert stale.status_code == 412
    assert world.caller.get(f"/v1/waitlist/{made['id']}").get_json()["status"] == "waiting"
    assert_problem(world.caller.delete("/v1/waitlist/wait_nope"), 404, "not_found")


def test_scopes_and_channels(world):
    reader = world.caller.with_scopes("read")
    assert_problem(reader.post("/v1/waitlist", json=body(world)), 403, "forbidden")
    frontend = world.caller.with_scopes("read", "book", channel="frontend")
    made = frontend.create("/v1/waitlist", body(world))
    assert_problem(reader.delete(f"/v1/waitlist/{made['id']}"), 403, "forbidden")
    assert reader.get(f"/v1/waitlist/{made['id']}").status_code == 200


def test_an_idempotent_retry_joins_once(world):
    caller = world.caller.with_headers({"Idempotency-Key": "join-1"})
    first = caller.post("/v1/waitlist", json=body(world))
    again = caller.post("/v1/waitlist", json=body(world))
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert len(listed(world.caller)["data"]) == 1


def test_instants_carry_the_clinics_offset(admin, clock):
    world = build_world(admin, clock, timezone_name="America/New_York")
    made = world.caller.create("/v1/waitlist", body(world))
    assert made["start"].endswith("-05:00") and made["timezone"] == "America/New_York"


@pytest.fixture
def sweep(app):
    """The scheduler's waitlist sweep, in-process on the test's transaction (tests/services/test_waitlist.py)."""
    holder = "test-waitlist-formats"
    jobs.register(holder, SchedulerSettings(database_url="unused"), sessions=app.extensions["db_write_sessions"])

    def run() -> int:
        jobs.keep_lease(holder)
        return jobs.offer_waitlist(holder)

    yield run
    jobs.unregister(holder)


def test_an_offer_shows_as_tentative_in_fhir_and_icalendar_and_goes_out_as_a_webhook(world, sweep, client):
    subscribed = world.caller.create(
        "/v1/webhooks",
        {"url": "https://93.184.215.14/hooks", "event_types": ["waitlist.offered", "waitlist.fulfilled"]},
    )
    world.consulted()
    world.clock.advance(seconds=1)  # a subscription receives the events after it was made
    waiting = world.caller.create("/v1/waitlist", body(world, start=world.at(1, 10), end=world.at(1, 10, 15)))
    assert sweep() == 1
    hold = world.caller.get(f"/v1/waitlist/{waiting['id']}").get_json()["offer"]["hold"]

    appointment = fhir_get(world.caller, f"Appointment/{fid(hold['id'])}")
    assert appointment["status"] == "proposed"
    [patient_part] = [p for p in appointment["participant"] if p["actor"].get("type") == "Patient"]
    assert patient_part["status"] == "tentative"  # the patient has not said yes yet
    busy = [s for s in fhir_slots(world, 1) if s["id"] == fid(hold["id"])]
    assert [s["status"] for s in busy] == ["busy-tentative"]

    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    event = ical_events(read(client, feed))[hold["id"]]
    assert str(event["status"]) == "TENTATIVE" and "(offered from the waitlist)" in str(event["summary"])

    with world.caller.app.extensions["db_write_sessions"]() as db:
        webhooks.fan_out(db, world.clock.now)
        db.commit()
    deliveries = world.caller.get(f"/v1/webhooks/{subscribed['id']}/deliveries").get_json()["data"]
    assert [d["event_type"] for d in deliveries] == ["waitlist.offered"]
