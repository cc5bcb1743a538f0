"""Availability search through the API."""
from .helpers import assert_problem


def search(world, **params):
    query = {"clinic_id": world.clinic["id"], "treatment_type_id": world.microneedling["id"],
             "start": world.at(0, 0), "end": world.at(1, 0), **params}
    response = world.caller.get("/v1/availability", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_slots_start_on_the_grid_inside_hours_after_the_notice(world):
    slots = search(world)["data"]
    starts = [s["starts_at"] for s in slots]
    # now is 08:00; 2 h notice; practitioner 09:00-17:00; a session lasts 70 minutes.
    assert starts[0] == "2027-01-04T10:00:00+00:00"
    assert starts[-1] == "2027-01-04T15:45:00+00:00"
    assert len(starts) == len(set(starts)) == 24


def test_every_slot_offered_books(world):
    world.consulted()
    slot = search(world, patient_id=world.patient["id"])["data"][3]
    body = {k: slot[k] for k in ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")}
    response = world.caller.post("/v1/appointments", json={**body, "patient_id": world.patient["id"]})
    assert response.status_code == 201, response.get_json()


def test_a_window_over_31_days_is_refused(world):
    response = world.caller.get("/v1/availability", query_string={
        "treatment_type_id": world.microneedling["id"], "start": world.at(0), "end": world.at(32)})
    assert "end" in assert_problem(response, 422, "validation_error")["errors"]


def test_the_patients_rules_explain_an_empty_answer(world):
    world.consulted()
    world.book()
    answer = search(world, patient_id=world.patient["id"], start=world.at(1, 0), end=world.at(8, 0))
    assert answer["data"] == []
    assert answer["reason"]["code"] == "interval_too_short"
    assert answer["reason"]["earliest_start"] == "2027-02-01T10:00:00+00:00"
