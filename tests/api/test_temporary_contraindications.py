"""Temporary contraindications (rule 2, docs/rules.md): `until` is the first local date on which
one no longer applies. Sessions on earlier local dates (in the clinic's zone) are refused with
`earliest_start` at the first instant of `until` there; from `until` on it is history, unresolved.
Booking, holds, reschedule and availability with `patient_id`; the API's shape; the channels.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from models import Contraindication, Patient

from ..booking_world import World, any_time_policy, build_world
from ..helpers import assert_problem
from .test_booking_policy import frontend_of

# The world's clock: Monday 4 January 2027, 08:00 UTC (London on GMT, so local = UTC).
UNTIL = "2027-01-20"  # a Wednesday, day 16 of the world
MIDNIGHT = "2027-01-20T00:00:00+00:00"


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def temporary(w: World, code: str = "recent_isotretinoin", until: str = UNTIL, **extra) -> dict:
    return ok(
        w.caller.patch(
            f"/v1/patients/{w.patient['id']}",
            json={"contraindications": [{"code": code, "until": until}, *extra.pop("also", [])], **extra},
        )
    )


def contraindicated(response) -> dict:
    return assert_problem(response, 422, "contraindicated")


def test_a_temporary_contraindication_is_shown_with_its_until(world):
    body = temporary(world, assessed_by="Dr Okafor", also=["rosacea"])
    assert body["contraindications"] == ["recent_isotretinoin", "rosacea"]
    shown = ok(world.caller.get(f"/v1/patients/{world.patient['id']}"))
    assert shown["contraindications"] == ["recent_isotretinoin", "rosacea"]
    history = {r["code"]: r for r in shown["contraindication_history"]}
    assert history["recent_isotretinoin"]["until"] == UNTIL
    assert history["recent_isotretinoin"]["recorded_by"] == "Dr Okafor"
    assert history["rosacea"]["until"] is None


def test_sessions_before_until_are_refused_from_its_first_instant_on_every_path(world):
    world.consulted()
    temporary(world)
    eve = world.at(day=15, hour=16)  # Tue 19 January, the last date before `until`
    for path in ("/v1/appointments", "/v1/holds"):
        body = contraindicated(world.caller.post(path, json=world.slot(starts_at=eve)))
        assert body["contraindications"] == ["recent_isotretinoin"]
        assert body["earliest_start"] == MIDNIGHT and body["until"] == UNTIL
    # On `until` itself and after: booked, though today is still before it.
    held = world.hold(starts_at=world.at(day=16, hour=9))
    booked = ok(world.caller.post("/v1/appointments", json={"hold_id": held["id"]}), 201)
    assert booked["starts_at"] == world.at(day=16, hour=9)
    # A reschedule to before `until` is refused the same way; to on or after it, moved.
    body = contraindicated(world.caller.patch(f"/v1/appointments/{booked['id']}", json={"starts_at": eve}))
    assert body["earliest_start"] == MIDNIGHT
    moved = ok(world.caller.patch(f"/v1/appointments/{booked['id']}", json={"starts_at": world.at(day=17)}))
    assert moved["starts_at"] == world.at(day=17)


def test_consultations_and_reviews_are_not_blocked(world):
    temporary(world)
    for kind in (world.consultation, world.review):
        world.book(treatment_type_id=kind["id"], starts_at=world.at(day=1, hour=10 + (kind is world.review)))


def test_a_permanent_one_beside_a_temporary_one_gives_no_earliest_start(world):
    world.consulted()
    temporary(world, also=["rosacea"])
    body = contraindicated(world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(day=1))))
    assert body["contraindications"] == ["recent_isotretinoin", "rosacea"]
    assert "earliest_start" not in body and "until" not in body
    # After `until`, the permanent one alone is named.
    body = contraindicated(world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(day=17))))
    assert body["contraindications"] == ["rosacea"]


def test_availability_for_the_patient_starts_at_until(world):
    world.consulted()
    temporary(world)
    window = {
        "treatment_type_id": world.microneedling["id"],
        "clinic_id": world.clinic["id"],
        "start": world.at(day=14, hour=0),
        "end": world.at(day=18, hour=0),
        "limit": 500,
    }
    everyone = ok(world.caller.get("/v1/availability", query_string=window))["data"]
    mine = ok(world.caller.get("/v1/availability", query_string={**window, "patient_id": world.patient["id"]}))
    assert [s for s in everyone if s["starts_at"] < MIDNIGHT]  # the days before have free slots ...
    assert mine["data"] == [s for s in everyone if s["starts_at"] >= MIDNIGHT]  # ... not for this patient
    assert mine["data"][0]["starts_at"] == world.at(day=16, hour=9) and mine["reason"] is None
    before = {**window, "end": MIDNIGHT, "patient_id": world.patient["id"]}
    answer = ok(world.caller.get("/v1/availability", query_string=before))
    assert answer["data"] == []
    assert answer["reason"]["code"] == "contraindicated"
    assert datetime.fromisoformat(answer["reason"]["earliest_start"]) == datetime.fromisoformat(MIDNIGHT)


def test_past_its_until_it_is_history_without_being_resolved(world, db, clock):
    world.consulted()
    temporary(world)
    clock.now = datetime.fromisoformat(MIDNIGHT) + timedelta(hours=8)
    shown = ok(world.caller.get(f"/v1/patients/{world.patient['id']}"))
    assert shown["contraindications"] == []
    [record] = shown["contraindication_history"]
    assert record["until"] == UNTIL and record["resolved_at"] is None
    world.book(starts_at=world.at(day=16, hour=10))
    # Listing nothing leaves the ended record as it is: it is history already.
    again = ok(world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": []}))
    assert again["contraindication_history"] == shown["contraindication_history"]
    # The same code listed again, permanent this time, is a new assessment.
    ok(world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": ["recent_isotretinoin"]}))
    rows = db.execute(
        sa.select(Contraindication.until, Contraindication.resolved_at)
        .where(Contraindication.patient_id == world.patient["id"])
        .order_by(Contraindication.id)
    ).all()
    assert [tuple(r) for r in rows] == [(datetime.fromisoformat(UNTIL).date(), None), (None, None)]


def test_a_new_until_is_a_new_assessment_and_the_same_one_changes_nothing(world):
    first = temporary(world)
    same = temporary(world)
    assert same["contraindication_history"] == first["contraindication_history"]
    assert same["updated_at"] == first["updated_at"]
    extended = temporary(world, until="2027-02-10", assessed_by="Dr Ito")
    old, new = extended["contraindication_history"]
    assert old["until"] == UNTIL and old["resolved_at"] is not None and old["resolved_by"] == "Dr Ito"
    assert new["until"] == "2027-02-10" and new["resolved_at"] is None
    body = contraindicated(world.caller.post("/v1/holds", json=world.slot(starts_at=world.at(day=20))))
    assert body["earliest_start"] == "2027-02-10T00:00:00+00:00"


def test_an_until_not_after_today_is_a_422_and_nothing_is_written(admin, db, world):
    count = db.scalar(sa.select(sa.func.count()).select_from(Patient))
    for until in ("2027-01-03", "2027-01-04"):  # yesterday, and today: it would apply to nothing
        entry = {"code": "pregnancy", "until": until}
        response = admin.post("/v1/patients", json={"name": "Ada", "contraindications": [entry]})
        body = assert_problem(response, 422, "validation_error")
        assert "after today" in str(body["errors"]["contraindications"])
        response = admin.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": [entry]})
        assert_problem(response, 422, "validation_error")
    assert db.scalar(sa.select(sa.func.count()).select_from(Patient)) == count
    assert db.scalar(sa.select(sa.func.count()).select_from(Contraindication)) == 0


def test_malformed_entries_are_422(admin):
    for entry in ({"until": "2027-02-01"}, {"code": "flu", "until": "2027-02-01"}, {"code": "pregnancy", "until": "x"},
                  {"code": "pregnancy", "until": "2027-02-01", "extra": 1}, 7):  # fmt: skip
        response = admin.post("/v1/patients", json={"name": "Ada", "contraindications": [entry]})
        assert "contraindications" in assert_problem(response, 422, "validation_error")["errors"], entry
    twice = [{"code": "pregnancy", "until": "2027-02-01"}, "pregnancy"]
    response = admin.post("/v1/patients", json={"name": "Ada", "contraindications": twice})
    assert "contraindications" in assert_problem(response, 422, "validation_error")["errors"]


def test_a_frontend_key_cannot_record_a_temporary_one(world, admin):
    frontend = frontend_of(admin)
    entry = [{"code": "pregnancy", "until": "2027-06-01"}]
    response = frontend.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": entry})
    assert_problem(response, 403, "forbidden")
    response = frontend.post("/v1/patients", json={"name": "Ada", "contraindications": entry})
    assert_problem(response, 403, "forbidden")


# Australia/Sydney in June: AEST, +10. Tue 1 June 09:00 there is Mon 31 May 23:00 UTC, a date before
# `until` in UTC but `until` itself on the clinic's calendar, which is the one that counts.
def test_until_is_a_date_on_the_clinics_calendar_in_sydney(admin, clock):
    w = build_world(admin, clock, timezone_name="Australia/Sydney")
    any_time_policy(admin)
    w.consulted()
    temporary(w, code="pregnancy", until="2027-06-01")
    clock.now = datetime.fromisoformat("2027-05-20T00:00:00+00:00")  # the windows within the search's horizon
    first = datetime.fromisoformat("2027-06-01T00:00:00+10:00")
    window = {
        "treatment_type_id": w.microneedling["id"],
        "clinic_id": w.clinic["id"],
        "patient_id": w.patient["id"],
        "start": "2027-05-28T00:00:00+10:00",
        "end": "2027-06-03T00:00:00+10:00",
    }
    answer = ok(w.caller.get("/v1/availability", query_string=window))
    assert answer["data"][0]["starts_at"] == "2027-06-01T09:00:00+10:00"  # the practitioner's first hour there
    answer = ok(w.caller.get("/v1/availability", query_string={**window, "end": first.isoformat()}))
    assert answer["data"] == [] and answer["reason"]["code"] == "contraindicated"
    assert datetime.fromisoformat(answer["reason"]["earliest_start"]) == first
    body = contraindicated(w.caller.post("/v1/appointments", json=w.slot(starts_at="2027-05-31T16:00:00+10:00")))
    assert body["earliest_start"] == "2027-06-01T00:00:00+10:00"
    booked = w.book(starts_at="2027-06-01T09:00:00+10:00")  # 31 May 23:00 UTC
    assert booked["starts_at"] == "2027-06-01T09:00:00+10:00"
