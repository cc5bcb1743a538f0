"""Availability search through the API.

Besides examples, two properties on random small clinics (Hypothesis):

- soundness: every slot /v1/availability offers a patient can be held for that
  patient through POST /v1/holds (each hold is released before the next);
- completeness: a brute-force checker that tries every 15-minute local grid start
  of the window (after the minimum notice) with every practitioner and room by
  placing a hold through the API finds exactly the start times the search offers,
  with and without `practitioner_id`.

Each property first checks hand-made clinics (explicit examples: a numbing gap
filled by another patient's review, a numbing area and a device count, a room's
turnover), then random ones: 1-2 practitioners with random weekly hours, 1-2
rooms, other patients' bookings and holds (some lapsed), the patient's own
review, closures, time off, numbing area and devices, in London or New York,
some in the weeks of a DST change.

Function-scoped fixtures are not reset between Hypothesis examples, so each example
builds its own organization and sets the clock; the examples share the test's
transaction, which is rolled back at the end.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from ..booking_world import MONDAY, World, build_world, patient
from ..domain.test_availability_engine import ENGINE_ZONES
from ..helpers import Caller, assert_problem, make_organization

UTC = UTC
LONDON = ZoneInfo("Europe/London")
SLOT_FIELDS = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")
NOTICE = timedelta(hours=2)
GRID = 15


def search(world, **params):
    query = {
        "clinic_id": world.clinic["id"],
        "treatment_type_id": world.microneedling["id"],
        "start": world.at(0, 0),
        "end": world.at(1, 0),
        **params,
    }
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
    response = world.caller.get(
        "/v1/availability",
        query_string={"treatment_type_id": world.microneedling["id"], "start": world.at(0), "end": world.at(32)},
    )
    assert "end" in assert_problem(response, 422, "validation_error")["errors"]


def test_the_patients_rules_explain_an_empty_answer(world):
    world.consulted()
    world.book()
    answer = search(world, patient_id=world.patient["id"], start=world.at(1, 0), end=world.at(8, 0))
    assert answer["data"] == []
    assert answer["reason"]["code"] == "interval_too_short"
    assert answer["reason"]["earliest_start"] == "2027-02-01T00:00:00+00:00"  # the 28th date, from midnight


# =========================================================================== helpers

_serial = itertools.count(1)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def at(day: int = 0, hour: int = 10, minute: int = 0) -> datetime:
    """`day` days after Monday 4 January 2027 at hour:minute UTC (London is on GMT)."""
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The aware instant of a local wall-clock minute (1440: the next midnight)."""
    extra, minute = divmod(minute, 24 * 60)
    return datetime.combine(day + timedelta(days=extra), time(minute // 60, minute % 60), zone)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def available(caller: Caller, **params) -> dict:
    """GET /v1/availability (limit 500 unless given); asserts a 200."""
    return ok(caller.get("/v1/availability", query_string={"limit": 500, **params}))


def starts(answer: dict) -> list[datetime]:
    return [instant(s["starts_at"]) for s in answer["data"]]


def hold(caller: Caller, slot: dict, patient_id: str):
    """POST /v1/holds for the slot; a hold placed is released again at once."""
    response = caller.post("/v1/holds", json={**{k: slot[k] for k in SLOT_FIELDS}, "patient_id": patient_id})
    if response.status_code == 201:
        release = caller.delete(f"/v1/holds/{response.get_json()['id']}")
        assert release.status_code == 204, release.get_json()
    return response


def week(clinic_id: str, start: str = "09:00", end: str = "17:00", days=range(6)) -> list[dict]:
    return [{"clinic_id": clinic_id, "weekday": d, "start": start, "end": end} for d in days]


def set_hours(caller: Caller, practitioner: dict, entries: list[dict]) -> None:
    ok(caller.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=entries))


def second_practitioner(w: World, clinic: dict | None = None) -> dict:
    clinic = clinic or w.clinic
    p = w.caller.make_practitioner(
        [clinic["id"]],
        name=f"Dr {next(_serial)}",
        treatment_type_ids=[w.consultation["id"], w.microneedling["id"], w.review["id"]],
    )
    set_hours(w.caller, p, week(clinic["id"]))
    return p


def clashes(start: datetime, busy) -> bool:
    """Whether a default session at `start` needs its practitioner during one of the `busy` intervals:
    5 minutes of cream from the start, then needling and aftercare from 30 to 70 minutes."""
    own = [(start, start + timedelta(minutes=5)), (start + timedelta(minutes=30), start + timedelta(minutes=70))]
    return any(a < d and c < b for a, b in own for c, d in busy)


# A default session at noon on Monday keeps its practitioner busy over these.
PRACTITIONER_AT_NOON = [(at(0, 12), at(0, 12, 5)), (at(0, 12, 30), at(0, 13, 10))]


def complete(w: World, appointment: dict) -> None:
    ok(w.caller.post(f"/v1/appointments/{appointment['id']}/complete"))


# =========================================================================== the numbing gap


def test_a_second_patient_arrives_25_minutes_after_the_first_in_the_other_room(app, world, monkeypatch):
    """Numbing 30, prep 5, procedure 20, aftercare 5: the practitioner is free from 10:05 to 10:30."""
    monkeypatch.setitem(app.config, "AVAILABILITY_GRID_MINUTES", 5)
    quick = world.caller.make_treatment_type(
        "microneedling", name="Quick", numbing_minutes=30, prep_minutes=5, procedure_minutes=20, aftercare_minutes=5
    )
    world.qualify(quick["id"])
    world.consulted()
    first = world.book(treatment_type_id=quick["id"])
    assert (first["procedure_starts_at"], first["ends_at"]) == (
        "2027-01-04T10:30:00+00:00",
        "2027-01-04T10:55:00+00:00",
    )
    second = patient(world)
    answer = available(
        world.caller,
        clinic_id=world.clinic["id"],
        treatment_type_id=quick["id"],
        patient_id=second["id"],
        start=at(0, 10).isoformat(),
        end=at(0, 12).isoformat(),
    )
    offered = {instant(s["starts_at"]): s for s in answer["data"]}
    slot = offered[at(0, 10, 25)]
    assert slot["room_id"] == world.rooms[1]["id"] and slot["practitioner_id"] == world.practitioner["id"]
    assert instant(slot["procedure_starts_at"]) == at(0, 10, 55)  # needling right after the first patient's
    # Arriving earlier, the second needling would start during the first one's.
    assert not {at(0, 10, m) for m in range(0, 25, 5)} & offered.keys()
    # 10:30 to 10:55 the practitioner is needling: no cream then either; from 10:55 they are free again.
    assert not {at(0, 10, m) for m in range(30, 55, 5)} & offered.keys()
    assert at(0, 10, 55) in offered
    assert hold(world.caller, slot, second["id"]).status_code == 201


@pytest.mark.parametrize("grid, inside", [(5, (5, 10, 15)), (15, (15,))])
def test_a_review_fits_inside_a_sessions_numbing_time(app, world, monkeypatch, grid, inside):
    """Default session at 10:00: the practitioner is busy 10:00-10:05 (cream) and from 10:30."""
    monkeypatch.setitem(app.config, "AVAILABILITY_GRID_MINUTES", grid)
    world.consulted()
    world.book()
    other = patient(world, consulted=False)
    answer = available(
        world.caller,
        clinic_id=world.clinic["id"],
        treatment_type_id=world.review["id"],
        practitioner_id=world.practitioner["id"],
        patient_id=other["id"],
        start=at(0, 10).isoformat(),
        end=at(0, 12).isoformat(),
    )
    offered = {instant(s["starts_at"]): s for s in answer["data"]}
    for minute in inside:
        slot = offered[at(0, 10, minute)]
        assert slot["room_id"] == world.rooms[1]["id"], slot  # the session's patient numbs in room 0
        assert slot["practitioner_id"] == world.practitioner["id"]
        assert instant(slot["ends_at"]) <= at(0, 10, 30)
        assert hold(world.caller, slot, other["id"]).status_code == 201
    assert at(0, 10) not in offered  # applying the cream
    assert not {at(0, 10, m) for m in range(20, 60, 5)} & offered.keys()  # would run into the needling
    assert at(0, 11, 15) in offered  # free again once the session ends


# =========================================================================== numbing area and devices


def pooled_world(caller, clock, **clinic) -> World:
    """The world's clinic with `clinic` settings, a second practitioner, and a session at noon in room 1
    for another patient."""
    w = build_world(caller, clock, **clinic)
    second_practitioner(w)
    w.book(patient_id=patient(w)["id"], room_id=w.rooms[1]["id"], starts_at=at(0, 12).isoformat())
    return w


# Every quarter hour from 11:00 to 13:30 on Monday.
AROUND_NOON = {at(0, 11, 0) + timedelta(minutes=15 * n) for n in range(11)}


def offered_around_noon(w: World, **params) -> set[datetime]:
    """Starts from 11:00 to 13:30 offered to a new patient; each offered slot is held (and released)."""
    newcomer = patient(w)
    answer = window(w, 0, 1, patient_id=newcomer["id"], **params)
    offered = [s for s in answer["data"] if at(0, 11) <= instant(s["starts_at"]) <= at(0, 13, 30)]
    for slot in offered:
        assert hold(w.caller, slot, newcomer["id"]).status_code == 201, slot
    return {instant(s["starts_at"]) for s in offered}


@pytest.mark.parametrize("seats, blocked", [(1, {(11, 45), (12, 0), (12, 15)}), (2, set())])
def test_the_numbing_area_has_as_many_patients_as_chairs(admin, clock, seats, blocked):
    """Numbing in the area 12:00-12:30, needling in room 1 from 12:30: room 0 stays free, a chair may not."""
    w = pooled_world(admin, clock, numbing_area_capacity=seats)
    offered = offered_around_noon(w, room_id=w.rooms[0]["id"])
    assert offered == AROUND_NOON - {at(0, h, m) for h, m in blocked}


def test_with_a_numbing_area_the_room_is_needed_from_the_needling_on(admin, clock):
    """One room: the next patient numbs in the area while the room is still in use."""
    w = pooled_world(admin, clock, numbing_area_capacity=2)
    # Room 1: 12:30-13:20 (needling, aftercare, turnover); a new session needs it 30-80 minutes after its start.
    offered = offered_around_noon(w, room_id=w.rooms[1]["id"])
    assert offered == {at(0, 11), at(0, 13)} | {at(0, 13, 15), at(0, 13, 30)}
    without = pooled_world(make_organization(admin.app, admin.client, "No numbing area"), clock)
    assert offered_around_noon(without, room_id=without.rooms[1]["id"]) == {at(0, 13, 30)}


@pytest.mark.parametrize("devices, blocked", [(1, {(11, 45), (12, 0), (12, 15)}), (2, set())])
def test_devices_are_counted_while_needling(admin, clock, devices, blocked):
    """The session at noon uses a device 12:30-13:00; another practitioner and room are free."""
    w = pooled_world(admin, clock, device_count=devices)
    offered = offered_around_noon(w, room_id=w.rooms[0]["id"])
    assert offered == AROUND_NOON - {at(0, h, m) for h, m in blocked}
    reviews = window(w, 0, 1, patient_id=None, treatment_type_id=w.review["id"], room_id=w.rooms[0]["id"])
    assert at(0, 12) in starts(reviews)  # a review needs no device


def test_a_clinic_counting_no_devices_offers_no_sessions(admin, clock):
    w = build_world(admin, clock, device_count=0)
    answer = window(w, 0, 1, patient_id=None)
    assert answer["data"] == []
    assert window(w, 0, 1, patient_id=None, treatment_type_id=w.review["id"])["data"]


# =========================================================================== DST, closures, two clinics

# The Sunday of each change in 2027: London 28 March and 31 October, New York 14 March and 7 November.
DST_CHANGES = [
    pytest.param("Europe/London", date(2027, 3, 28), id="london-spring"),
    pytest.param("Europe/London", date(2027, 10, 31), id="london-autumn"),
    pytest.param("America/New_York", date(2027, 3, 14), id="new-york-spring"),
    pytest.param("America/New_York", date(2027, 11, 7), id="new-york-autumn"),
]


def dst_world(caller: Caller, clock, zone_name: str, change: date, start: str, end: str) -> World:
    """The clock at noon local four days before the change; clinic and practitioner open every day."""
    zone = ZoneInfo(zone_name)
    clock.now = local(change - timedelta(days=4), 12 * 60, zone).astimezone(UTC)
    w = build_world(caller, clock, timezone_name=zone_name)
    ok(
        w.caller.patch(
            f"/v1/clinics/{w.clinic['id']}",
            json={"opening_hours": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]},
        )
    )
    set_hours(w.caller, w.practitioner, week(w.clinic["id"], start, end, days=range(7)))
    return w


def by_local_day(answer: dict, zone: ZoneInfo) -> dict[date, list[int]]:
    days = defaultdict(list)
    for slot in answer["data"]:
        start = instant(slot["starts_at"])
        assert start.utcoffset() == start.astimezone(zone).utcoffset(), slot  # shown in the clinic's offset
        start = start.astimezone(zone)
        assert start.second == 0 and start.minute % GRID == 0, slot
        days[start.date()].append(start.hour * 60 + start.minute)
    return dict(days)


@pytest.mark.parametrize("zone_name, change", DST_CHANGES)
def test_a_dst_week_keeps_slots_on_the_local_grid_inside_local_hours(admin, clock, zone_name, change):
    zone = ZoneInfo(zone_name)
    w = dst_world(admin, clock, zone_name, change, "09:00", "17:00")
    friday, tuesday = change - timedelta(days=2), change + timedelta(days=2)
    assert local(friday, 600, zone).utcoffset() != local(tuesday, 600, zone).utcoffset()
    answer = available(
        w.caller,
        clinic_id=w.clinic["id"],
        treatment_type_id=w.microneedling["id"],
        start=local(friday, 0, zone).isoformat(),
        end=local(tuesday, 24 * 60, zone).isoformat(),
    )
    # 09:00 to 15:45 local (a session lasts 70 minutes and must end by 17:00), every day alike.
    every_day = list(range(9 * 60, 15 * 60 + 46, GRID))
    assert by_local_day(answer, zone) == {friday + timedelta(days=d): every_day for d in range(5)}
    for slot in answer["data"]:
        start, end = instant(slot["starts_at"]), instant(slot["ends_at"])
        assert end - start == timedelta(minutes=70)
        assert end.astimezone(zone).time() <= time(17)


@pytest.mark.parametrize("zone_name, change", DST_CHANGES)
def test_a_closure_on_the_day_of_a_dst_change_closes_that_local_day(admin, clock, zone_name, change):
    """Open round the clock; closing the change's Sunday closes exactly its local midnight to midnight."""
    zone = ZoneInfo(zone_name)
    w = dst_world(admin, clock, zone_name, change, "00:00", "24:00")
    saturday, monday = change - timedelta(days=1), change + timedelta(days=1)
    query = dict(
        clinic_id=w.clinic["id"],
        treatment_type_id=w.microneedling["id"],
        start=local(saturday, 0, zone).isoformat(),
        end=local(monday, 24 * 60, zone).isoformat(),
    )
    before = by_local_day(available(w.caller, **query), zone)
    assert set(before) == {saturday, change, monday} and len(before[change]) >= 90
    ok(
        w.caller.patch(
            f"/v1/clinics/{w.clinic['id']}",
            json={"closures": [{"start_date": change.isoformat(), "end_date": change.isoformat()}]},
        )
    )
    after = by_local_day(available(w.caller, **query), zone)
    # Saturday: the last session (70 min) must end by the closure's local midnight.
    assert after == {saturday: list(range(0, 22 * 60 + 46, GRID)), monday: list(range(0, 24 * 60, GRID))}


def test_a_closure_day_yields_no_slots_that_day(world):
    query = dict(
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(3, 0).isoformat(),
    )
    tuesday = date(2027, 1, 5)
    assert tuesday in by_local_day(available(world.caller, **query), LONDON)
    ok(
        world.caller.patch(
            f"/v1/clinics/{world.clinic['id']}",
            json={"closures": [{"start_date": "2027-01-05", "end_date": "2027-01-05"}]},
        )
    )
    days = by_local_day(available(world.caller, **query), LONDON)
    assert set(days) == {date(2027, 1, 4), date(2027, 1, 6)}


def test_a_practitioner_at_two_clinics_in_two_zones_on_one_day(world, clock):
    """London 09:00-13:00 and New York 09:00-17:00 (14:00-22:00 UTC in January) on Mondays: no overlap
    all year (in the weeks New York is on summer time and London not, 13:00-21:00 UTC)."""
    new_york = ZoneInfo("America/New_York")
    ny = world.caller.make_clinic(
        name="Manhattan",
        timezone="America/New_York",
        opening_hours=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)],
    )
    world.caller.make_room(ny["id"], name="Room NY")
    p = world.practitioner
    ok(world.caller.patch(f"/v1/practitioners/{p['id']}", json={"clinic_ids": [world.clinic["id"], ny["id"]]}))
    set_hours(
        world.caller,
        p,
        [
            {"clinic_id": world.clinic["id"], "weekday": 0, "start": "09:00", "end": "13:00"},
            {"clinic_id": ny["id"], "weekday": 0, "start": "09:00", "end": "17:00"},
        ],
    )
    monday = date(2027, 1, 4)

    def offered(clinic, zone):
        answer = available(
            world.caller,
            clinic_id=clinic["id"],
            treatment_type_id=world.microneedling["id"],
            start=at(0, 0).isoformat(),
            end=at(1, 12).isoformat(),
        )
        assert {(s["clinic_id"], s["practitioner_id"]) for s in answer["data"]} == {(clinic["id"], p["id"])}
        return by_local_day(answer, zone)

    # Each clinic within its own hours: London from the notice (10:00) to 11:45, New York 09:00 to 15:45.
    assert offered(world.clinic, LONDON) == {monday: list(range(10 * 60, 11 * 60 + 46, GRID))}
    assert offered(ny, new_york) == {monday: list(range(9 * 60, 15 * 60 + 46, GRID))}
    everywhere = available(
        world.caller, treatment_type_id=world.microneedling["id"], start=at(0, 0).isoformat(), end=at(1, 12).isoformat()
    )["data"]
    assert [s["clinic_id"] for s in everywhere] == [world.clinic["id"]] * 8 + [ny["id"]] * 28

    # A booking in London (practitioner 11:00-11:05 and 11:30-12:10 UTC) stays when the week changes
    # to New York 04:00-12:00 (09:00-17:00 UTC): the practitioner's claims are global.
    world.consulted()
    booked = world.book(starts_at=at(0, 11).isoformat())
    set_hours(world.caller, p, [{"clinic_id": ny["id"], "weekday": 0, "start": "04:00", "end": "12:00"}])
    busy = [(at(0, 11), at(0, 11, 5)), (at(0, 11, 30), at(0, 12, 10))]
    grid = [at(0, 10, m) for m in range(0, 6 * 60, GRID)]  # from the notice to the last start by 17:00 UTC
    ny_starts = {local(monday, m, new_york) for m in offered(ny, new_york)[monday]}
    assert ny_starts == {s for s in grid if not clashes(s, busy)}
    assert {s for s in grid if clashes(s, busy)} == {at(0, 10, m) for m in (0, 15, 30, 45)} | {
        at(0, 11, m) for m in (0, 15, 30, 45)
    } | {at(0, 12)}
    ok(world.caller.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_request"}))
    ny_starts = {local(monday, m, new_york) for m in offered(ny, new_york)[monday]}
    assert ny_starts == set(grid)


# =========================================================================== patient rules


def window(world, first_day: int, last_day: int, **params) -> dict:
    """The world's patient's microneedling slots from midnight UTC of `first_day` to that of `last_day`;
    a parameter given as None is left out."""
    query = {
        "clinic_id": world.clinic["id"],
        "treatment_type_id": world.microneedling["id"],
        "patient_id": world.patient["id"],
        "start": at(first_day, 0).isoformat(),
        "end": at(last_day, 0).isoformat(),
        **params,
    }
    return available(world.caller, **{k: v for k, v in query.items() if v is not None})


def test_no_slot_within_28_days_of_a_session_either_side(world, clock):
    world.consulted()
    world.caller.create(
        f"/v1/patients/{world.patient['id']}/past-sessions",
        {"treatment_type_id": world.microneedling["id"], "performed_at": at(-20, 10).isoformat()},
    )
    answer = window(world, 0, 20)
    assert answer["reason"] is None
    assert starts(answer)[0] == at(8, 9)  # the 28th date after day -20, from its first open hour
    # A session booked on day 40 rules out the dates after day 12 too (day 12 itself, all day).
    ok(world.caller.post("/v1/appointments", json=world.slot(starts_at=at(40, 10).isoformat())), 201)
    answer = window(world, 0, 20)
    offered = starts(answer)
    assert offered[0] == at(8, 9) and offered[-1] == max(s for s in starts(window(world, 12, 13)))
    assert offered[-1] > at(12, 10)
    assert {s.date() for s in offered} == {date(2027, 1, d) for d in (12, 13, 14, 15, 16)}
    # Another patient gets the whole window.
    assert starts(window(world, 0, 20, patient_id=patient(world)["id"]))[0] == at(0, 10)


def test_an_interval_ruling_out_the_window_gives_the_earliest_start(world):
    world.consulted()
    world.book(starts_at=at(0, 11).isoformat())
    answer = window(world, 1, 28)
    assert answer["data"] == []
    assert answer["reason"]["code"] == "interval_too_short"
    assert instant(answer["reason"]["earliest_start"]) == at(28, 0)  # the window's end: the 28th date
    assert starts(window(world, 1, 30))[0] == at(28, 9)


def test_a_complete_course_gives_course_complete(world):
    world.consulted()
    course = world.caller.make_course(world.patient["id"], world.microneedling["id"], max_sessions=2)
    for day in (-100, -60):
        world.caller.create(
            f"/v1/patients/{world.patient['id']}/past-sessions",
            {
                "treatment_type_id": world.microneedling["id"],
                "performed_at": at(day).isoformat(),
                "course_id": course["id"],
            },
        )
    answer = window(world, 0, 7)
    assert answer["data"] == [] and answer["reason"]["code"] == "course_complete"
    assert answer["reason"]["earliest_start"] is None
    # Reviews go on.
    assert window(world, 0, 7, treatment_type_id=world.review["id"])["data"]


def test_a_course_at_its_cap_with_a_booked_session_gives_course_complete(world):
    world.consulted()
    course = world.caller.make_course(world.patient["id"], world.microneedling["id"], max_sessions=2)
    world.caller.create(
        f"/v1/patients/{world.patient['id']}/past-sessions",
        {
            "treatment_type_id": world.microneedling["id"],
            "performed_at": at(-60).isoformat(),
            "course_id": course["id"],
        },
    )
    assert window(world, 0, 7)["data"]  # one session left
    world.book(starts_at=at(40).isoformat())
    answer = window(world, 0, 7)
    assert answer["data"] == [] and answer["reason"]["code"] == "course_complete"


def test_without_a_consultation_no_session_is_offered(world):
    answer = window(world, 0, 7)
    assert answer["data"] == [] and answer["reason"]["code"] == "consultation_required"
    assert window(world, 0, 7, treatment_type_id=world.review["id"])["data"]
    assert window(world, 0, 7, treatment_type_id=world.consultation["id"])["data"]
    world.consulted()
    assert window(world, 0, 7)["data"]


def test_a_contraindication_blocks_sessions_but_not_reviews(world):
    world.consulted()
    assert window(world, 0, 7)["data"]
    ok(world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": ["rosacea"]}))
    answer = window(world, 0, 7)
    assert answer["data"] == [] and answer["reason"]["code"] == "contraindicated"
    reviews = window(world, 0, 7, treatment_type_id=world.review["id"])
    assert reviews["data"] and reviews["reason"] is None
    assert hold(world.caller, reviews["data"][0], world.patient["id"]).status_code == 201


def test_the_patients_own_appointments_block_their_slots(world):
    """A patient is in one place at a time, at any clinic."""
    world.consulted()
    p2 = second_practitioner(world)
    world.book(
        treatment_type_id=world.review["id"],
        practitioner_id=p2["id"],
        room_id=world.rooms[1]["id"],
        starts_at=at(0, 12).isoformat(),
    )  # 12:00-12:15
    offered = set(starts(window(world, 0, 1)))
    assert not {at(0, 11), at(0, 11, 15), at(0, 11, 30), at(0, 11, 45), at(0, 12)} & offered  # 70 min
    assert {at(0, 10, 45), at(0, 12, 15)} <= offered
    assert at(0, 11, 15) in set(starts(window(world, 0, 1, patient_id=patient(world)["id"])))


# =========================================================================== holds, order, filters, scope


def test_a_live_hold_blocks_its_slots_and_an_expired_one_does_not(world, clock):
    world.consulted()
    assert at(0, 12) in starts(window(world, 0, 1))
    every = set(starts(window(world, 0, 1)))
    held = world.hold(patient_id=patient(world)["id"], starts_at=at(0, 12).isoformat())
    # The one practitioner applies cream 12:00-12:05 and needles 12:30-13:10.
    blocked = {s for s in every if clashes(s, PRACTITIONER_AT_NOON)}
    assert blocked == {at(0, 11, m) for m in (0, 15, 30, 45)} | {at(0, 12, m) for m in (0, 15, 30, 45)} | {at(0, 13)}
    assert set(starts(window(world, 0, 1))) == every - blocked
    clock.advance(minutes=9, seconds=59)
    after_notice = {s for s in every if s >= at(0, 10, 15)}  # the notice moves with the clock
    assert set(starts(window(world, 0, 1))) == after_notice - blocked
    clock.now = instant(held["expires_at"])  # expired at its expires_at
    assert set(starts(window(world, 0, 1))) == after_notice


def test_evening_order_gives_latest_in_the_day_first(world):
    earliest = available(
        world.caller,
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(3, 0).isoformat(),
    )["data"]
    evening = available(
        world.caller,
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(3, 0).isoformat(),
        order="evening",
    )["data"]
    assert [s["starts_at"] for s in evening[:4]] == [
        "2027-01-04T15:45:00+00:00",
        "2027-01-05T15:45:00+00:00",
        "2027-01-06T15:45:00+00:00",
        "2027-01-04T15:30:00+00:00",
    ]
    assert sorted(evening, key=lambda s: s["starts_at"]) == earliest
    minutes = [instant(s["starts_at"]).hour * 60 + instant(s["starts_at"]).minute for s in evening]
    assert minutes == sorted(minutes, reverse=True)
    limited = available(
        world.caller,
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(3, 0).isoformat(),
        order="evening",
        limit=2,
    )["data"]
    assert limited == evening[:2]


def test_limit_gives_the_first_slots(world):
    slots = window(world, 0, 3, limit=3, patient_id=None)["data"]
    assert [s["starts_at"] for s in slots] == [
        "2027-01-04T10:00:00+00:00",
        "2027-01-04T10:15:00+00:00",
        "2027-01-04T10:30:00+00:00",
    ]
    assert len(window(world, 0, 3, patient_id=None)["data"]) > 50


def test_room_filter(world):
    p2 = second_practitioner(world)
    world.book(
        patient_id=patient(world)["id"],
        practitioner_id=p2["id"],
        room_id=world.rooms[1]["id"],
        starts_at=at(0, 12).isoformat(),
    )  # room 1 busy 12:00-13:20
    query = dict(
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(1, 0).isoformat(),
    )
    unfiltered = available(world.caller, **query)["data"]
    room_1 = available(world.caller, room_id=world.rooms[1]["id"], **query)["data"]
    assert {s["room_id"] for s in room_1} == {world.rooms[1]["id"]}
    assert at(0, 12) in {instant(s["starts_at"]) for s in unfiltered}
    taken = {s for s in starts({"data": unfiltered}) if at(0, 10, 40) < s < at(0, 13, 20)}  # room: 80 min
    assert len(taken) == 11
    assert set(starts({"data": unfiltered})) - set(starts({"data": room_1})) == taken


def test_a_room_without_the_capability_is_not_offered_for_sessions(world):
    plain = world.caller.make_room(world.clinic["id"], name="Consulting room", capabilities=[])
    query = dict(clinic_id=world.clinic["id"], start=at(0, 0).isoformat(), end=at(1, 0).isoformat())
    sessions = available(world.caller, treatment_type_id=world.microneedling["id"], **query)["data"]
    assert sessions and plain["id"] not in {s["room_id"] for s in sessions}
    assert (
        available(world.caller, treatment_type_id=world.microneedling["id"], room_id=plain["id"], **query)["data"] == []
    )
    reviews = available(world.caller, treatment_type_id=world.review["id"], room_id=plain["id"], **query)["data"]
    assert reviews and {s["room_id"] for s in reviews} == {plain["id"]}


def test_practitioner_filter_gives_that_practitioners_slots(world):
    p2 = second_practitioner(world)
    world.book(
        patient_id=patient(world)["id"],
        practitioner_id=p2["id"],
        room_id=world.rooms[1]["id"],
        starts_at=at(0, 12).isoformat(),
    )  # p2 busy 12:00-12:05, 12:30-13:10
    query = dict(
        clinic_id=world.clinic["id"],
        treatment_type_id=world.microneedling["id"],
        start=at(0, 0).isoformat(),
        end=at(1, 0).isoformat(),
    )
    first = available(world.caller, practitioner_id=world.practitioner["id"], **query)["data"]
    second = available(world.caller, practitioner_id=p2["id"], **query)["data"]
    assert {s["practitioner_id"] for s in first} == {world.practitioner["id"]}
    assert {s["practitioner_id"] for s in second} == {p2["id"]}
    assert len(first) == 24
    missing = set(starts({"data": first})) - set(starts({"data": second}))
    assert missing == {s for s in starts({"data": first}) if clashes(s, PRACTITIONER_AT_NOON)}
    assert len(missing) == 9
    # Without the filter, every start is still offered once (the other practitioner takes over).
    assert starts(available(world.caller, **query)) == starts({"data": first})


def test_the_whole_organization_gives_the_earliest_slots_across_clinics(world):
    ny = world.caller.make_clinic(name="Manhattan", timezone="America/New_York")
    world.caller.make_room(ny["id"], name="Room NY")
    second_practitioner(world, ny)  # 09:00-17:00 New York: 14:00-22:00 UTC in January
    ok(
        world.caller.patch(
            f"/v1/clinics/{world.clinic['id']}",
            json={"closures": [{"start_date": "2027-01-04", "end_date": "2027-01-04"}]},
        )
    )
    query = dict(treatment_type_id=world.microneedling["id"], start=at(0, 0).isoformat(), end=at(2, 0).isoformat())
    london = available(world.caller, clinic_id=world.clinic["id"], **query)["data"]
    new_york = available(world.caller, clinic_id=ny["id"], **query)["data"]
    everywhere = available(world.caller, **query)["data"]
    assert everywhere[0]["starts_at"] == "2027-01-04T09:00:00-05:00" and everywhere[0]["clinic_id"] == ny["id"]
    assert sorted(everywhere, key=lambda s: (instant(s["starts_at"]), s["clinic_id"])) == sorted(
        london + new_york, key=lambda s: (instant(s["starts_at"]), s["clinic_id"])
    )
    assert [instant(s["starts_at"]) for s in everywhere] == sorted(instant(s["starts_at"]) for s in everywhere)
    first_five = available(world.caller, limit=5, **query)["data"]
    assert first_five == everywhere[:5]
    # Tuesday: London opens at 09:00 UTC, before New York (14:00 UTC).
    tuesday = [s for s in everywhere if instant(s["starts_at"]) >= at(1, 0)]
    assert tuesday[0]["clinic_id"] == world.clinic["id"] and instant(tuesday[0]["starts_at"]) == at(1, 9)


def test_continuity_prefers_the_patients_last_practitioner(world, clock):
    world.consulted()
    p2 = second_practitioner(world)
    names = {world.practitioner["id"], p2["id"]}
    query = dict(start=at(30, 0).isoformat(), end=at(32, 0).isoformat())
    newcomer = patient(world)
    default = {s["practitioner_id"] for s in window(world, 0, 1, patient_id=newcomer["id"], **query)["data"]}
    assert len(default) == 1  # with no history, one practitioner is preferred for every start
    other = (names - default).pop()
    appointment = world.book(practitioner_id=other, starts_at=at(0, 10).isoformat())
    clock.now = at(0, 12)
    complete(world, appointment)
    answer = window(world, 0, 1, **query)
    assert answer["data"] and {s["practitioner_id"] for s in answer["data"]} == {other}
    # When the last practitioner is busy, the other one takes the start.
    world.book(
        patient_id=newcomer["id"], practitioner_id=other, room_id=world.rooms[1]["id"], starts_at=at(30, 12).isoformat()
    )
    chosen = {instant(s["starts_at"]): s["practitioner_id"] for s in window(world, 0, 1, **query)["data"]}
    assert chosen[at(30, 12)] == default.pop() and chosen[at(30, 10)] == other


def test_a_window_of_31_days_is_accepted_and_one_minute_more_is_not(world):
    assert window(world, 0, 31, limit=1, patient_id=None)["data"]
    response = world.caller.get(
        "/v1/availability",
        query_string={
            "clinic_id": world.clinic["id"],
            "treatment_type_id": world.microneedling["id"],
            "start": at(0, 0).isoformat(),
            "end": at(31, 0, 1).isoformat(),
        },
    )
    assert "end" in assert_problem(response, 422, "validation_error")["errors"]


def test_nothing_before_the_minimum_notice(world, clock):
    clock.now = at(0, 8, 7)
    slots = search(world, practitioner_id=world.practitioner["id"])["data"]
    assert instant(slots[0]["starts_at"]) == at(0, 10, 15)  # 10:07 rounds up to the grid
    clock.now = at(0, 13, 45)
    assert instant(search(world)["data"][0]["starts_at"]) == at(0, 15, 45)
    clock.now = at(0, 13, 46)
    assert search(world)["data"] == []


def test_nothing_beyond_the_horizon(world, clock):
    clock.now = at(1, 12)  # horizon: 90 days on, Monday 5 April 2027 12:00 UTC (13:00 BST)
    horizon = at(91, 12)
    answer = window(world, 85, 95, patient_id=None, limit=500)
    offered = starts(answer)
    assert max(offered) == horizon - timedelta(minutes=15)
    assert horizon - timedelta(days=2) in offered  # the Saturday before, 12:00 UTC, is offered
    later = window(world, 92, 100, patient_id=None)
    assert later["data"] == [] and later["reason"] is None


# =========================================================================== random clinics

SEARCHED = ("session", "custom", "review", "consultation")
BASES = (  # Fridays at 08:00 UTC: ordinary, and before each 2027 DST change of the two zones
    datetime(2027, 1, 8, 8, tzinfo=UTC),
    datetime(2027, 3, 12, 8, tzinfo=UTC),
    datetime(2027, 3, 26, 8, tzinfo=UTC),
    datetime(2027, 10, 29, 8, tzinfo=UTC),
    datetime(2027, 11, 5, 8, tzinfo=UTC),
)


def minutes(low: int, high: int, step: int = 5):
    return st.integers(low // step, high // step).map(lambda n: n * step)


@dataclass(frozen=True)
class Booking:
    """Someone's appointment or hold in the random clinic, placed if the booking engine accepts it."""

    kind: str  # a key of SEARCHED
    practitioner: int
    room: int
    day: int  # local days after today
    minute: int  # minutes after the start of the practitioner's first shift that day (else after 09:00)
    mode: str  # book | hold | lapsed (a hold that expired)


@dataclass(frozen=True)
class Staff:
    qualified: bool  # for the searched type
    shifts: tuple  # per window day: ((start, end), ...) local minutes


@dataclass(frozen=True)
class Spec:
    zone: str
    now: datetime
    opening: tuple
    numbing_area: int
    devices: int | None
    rooms: tuple  # needling capability per room
    staff: tuple
    searched: str
    custom: tuple  # numbing, prep, procedure, aftercare, turnover
    others: tuple  # other patients' bookings
    own: tuple  # the patient's own bookings (reviews)
    consulted: bool
    last_session: timedelta | None  # a past session this long before now
    contraindicated: bool
    closure: int | None
    time_off: tuple  # (practitioner, day, minute, duration)


@st.composite
def day_shifts(draw):
    """0 to 2 shifts of a day (local minutes), from 06:00 on; the second may touch the first."""
    # The simplest example (Hypothesis starts there and shrinks towards it) is one shift 09:00-17:00.
    count = draw(st.sampled_from((1, 1, 1, 1, 1, 2, 2, 2, 2, 0)))
    shifts, start = [], draw(st.sampled_from((9 * 60, 8 * 60, 10 * 60, 6 * 60))) + draw(minutes(0, 60))
    lengths = (
        draw(st.sampled_from((8 * 60, 6 * 60, 4 * 60, 2 * 60))) + draw(minutes(0, 60)),
        draw(minutes(30, 4 * 60)),
    )
    for length in lengths[:count]:
        end = min(start + length, 24 * 60)
        shifts.append((start, end))
        start = end + draw(minutes(0, 90))
        if start > 23 * 60:
            break
    return tuple(shifts)


@st.composite
def custom_timing(draw):
    numbing = draw(minutes(20, 60))
    prep = draw(minutes(0, min(15, numbing - 5)))
    return (numbing, prep, draw(minutes(5, 60)), draw(minutes(0, 20)), draw(minutes(0, 20)))


def bookings(rooms: int, practitioners: int, days, modes, max_size: int):
    return st.lists(
        st.builds(
            Booking,
            kind=st.sampled_from(("review", "session", "review", "custom", "consultation")),
            practitioner=st.integers(0, practitioners - 1),
            room=st.integers(0, rooms - 1),
            day=st.sampled_from(days),
            minute=minutes(0, 6 * 60),
            mode=st.sampled_from(modes),
        ),
        max_size=max_size,
    ).map(tuple)


@st.composite
def specs(draw, days=(0, 1, 2)):
    """A random clinic; bookings, time off and closures fall on `days` (local days after today)."""
    rooms = tuple(draw(st.sampled_from((True,) * 6 + (False,))) for _ in range(draw(st.sampled_from((2, 1)))))
    if not any(rooms):
        rooms = (True, *rooms[1:])
    n_staff = draw(st.sampled_from((2, 1)))
    staff = tuple(
        Staff(draw(st.sampled_from((True,) * 9 + (False,))), tuple(draw(day_shifts()) for _ in range(3)))
        for _ in range(n_staff)
    )
    return Spec(
        zone=draw(st.sampled_from(("Europe/London", "America/New_York"))),
        now=draw(st.sampled_from(BASES)) + timedelta(minutes=draw(minutes(0, 6 * 60))),
        opening=(
            draw(st.sampled_from((8 * 60, 0, 7 * 60, 9 * 60 + 30))),
            draw(st.sampled_from((20 * 60, 16 * 60, 18 * 60, 24 * 60))),
        ),
        numbing_area=draw(st.sampled_from((0, 1, 0, 2))),
        devices=draw(st.sampled_from((None, 1, None, 2))),
        rooms=rooms,
        staff=staff,
        searched=draw(st.sampled_from(SEARCHED)),
        custom=draw(custom_timing()),
        others=draw(bookings(len(rooms), n_staff, days, ("book", "book", "hold", "lapsed"), 6)),
        own=draw(
            bookings(len(rooms), n_staff, days, ("book", "hold"), 1).map(
                lambda b: tuple(replace(x, kind="review") for x in b)
            )
        ),
        consulted=draw(st.sampled_from((True,) * 6 + (False,))),
        last_session=draw(
            st.builds(
                lambda skip, d, m: None if skip else timedelta(days=d, minutes=m),
                st.sampled_from((True, True, True, False)),
                st.integers(26, 30),
                minutes(0, 24 * 60 - 5),
            )
        ),
        contraindicated=draw(st.sampled_from((False,) * 19 + (True,))),
        closure=draw(st.sampled_from((None,) * 4 * len(days) + days)),
        time_off=tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.integers(0, n_staff - 1), st.sampled_from(days), minutes(6 * 60, 18 * 60), minutes(5, 4 * 60)
                    ),
                    max_size=2,
                )
            )
        ),
    )


@dataclass
class Clinic:
    caller: Caller
    zone: ZoneInfo
    today: date
    clinic: dict
    rooms: list
    practitioners: list
    types: dict
    patient: dict
    searched: dict

    def day(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def query(self, first_day: int, last_day: int, **params) -> dict:
        """Availability for the patient from local midnight of `first_day` to that of `last_day`."""
        return {
            "clinic_id": self.clinic["id"],
            "treatment_type_id": self.searched["id"],
            "patient_id": self.patient["id"],
            "start": local(self.day(first_day), 0, self.zone).isoformat(),
            "end": local(self.day(last_day), 0, self.zone).isoformat(),
            **params,
        }


_organizations = itertools.count(1)


def build_clinic(app, client, clock, spec: Spec) -> Clinic:
    clock.now = spec.now
    caller = make_organization(app, client, f"Random chain {next(_organizations)}")
    zone = ZoneInfo(spec.zone)
    today = spec.now.astimezone(zone).date()
    clinic = caller.make_clinic(
        timezone=spec.zone,
        numbing_area_capacity=spec.numbing_area,
        device_count=spec.devices,
        opening_hours=[{"weekday": d, "start": hhmm(spec.opening[0]), "end": hhmm(spec.opening[1])} for d in range(7)],
        closures=[]
        if spec.closure is None
        else [
            {
                "start_date": (today + timedelta(days=spec.closure)).isoformat(),
                "end_date": (today + timedelta(days=spec.closure)).isoformat(),
            }
        ],
    )
    rooms = [
        caller.make_room(clinic["id"], name=f"Room {i}", capabilities=["needling"] if needling else [])
        for i, needling in enumerate(spec.rooms)
    ]
    numbing, prep, procedure, aftercare, turnover = spec.custom
    types = {
        "session": caller.make_treatment_type("microneedling"),
        "custom": caller.make_treatment_type(
            "microneedling",
            name="Custom",
            numbing_minutes=numbing,
            prep_minutes=prep,
            procedure_minutes=procedure,
            aftercare_minutes=aftercare,
            turnover_minutes=turnover,
        ),
        "review": caller.make_treatment_type("review"),
        "consultation": caller.make_treatment_type("consultation"),
    }
    searched = types[spec.searched]
    practitioners = []
    for i, member in enumerate(spec.staff):
        qualified = [t["id"] for t in types.values() if member.qualified or t is not searched]
        p = caller.make_practitioner([clinic["id"]], name=f"Dr {i}", treatment_type_ids=qualified)
        set_hours(
            caller,
            p,
            [
                {
                    "clinic_id": clinic["id"],
                    "weekday": (today + timedelta(days=d)).weekday(),
                    "start": hhmm(s),
                    "end": hhmm(e),
                }
                for d, shifts in enumerate(member.shifts)
                for s, e in shifts
            ],
        )
        practitioners.append(p)
    for who, day, minute, duration in spec.time_off:
        starts_at = local(today + timedelta(days=day), minute, zone)
        caller.create(
            f"/v1/practitioners/{practitioners[who]['id']}/time-off",
            {"starts_at": starts_at.isoformat(), "ends_at": (starts_at + timedelta(minutes=duration)).isoformat()},
        )
    consultation_at = (spec.now - timedelta(days=10)).isoformat()
    the_patient = caller.make_patient(contraindications=["active_acne"] if spec.contraindicated else [])
    if spec.consulted:
        caller.create(
            f"/v1/patients/{the_patient['id']}/past-sessions",
            {"treatment_type_id": types["consultation"]["id"], "performed_at": consultation_at},
        )
    if spec.last_session is not None:
        caller.create(
            f"/v1/patients/{the_patient['id']}/past-sessions",
            {"treatment_type_id": types["session"]["id"], "performed_at": (spec.now - spec.last_session).isoformat()},
        )

    def place(booking: Booking, patient_id: str):
        shifts = spec.staff[booking.practitioner].shifts[booking.day]
        minute = (shifts[0][0] if shifts else 9 * 60) + booking.minute
        path = "/v1/appointments" if booking.mode == "book" else "/v1/holds"
        response = caller.post(
            path,
            json={
                "clinic_id": clinic["id"],
                "practitioner_id": practitioners[booking.practitioner]["id"],
                "room_id": rooms[booking.room]["id"],
                "treatment_type_id": types[booking.kind]["id"],
                "patient_id": patient_id,
                "starts_at": local(today + timedelta(days=booking.day), minute, zone).isoformat(),
            },
        )
        assert response.status_code in (201, 409, 422), response.get_json()
        note(f"{booking} for {patient_id}: {response.status_code} {response.get_json().get('code', '')}")

    def someone(booking: Booking):
        """A new patient for each booking of someone else, with a consultation if a session needs one."""
        other = caller.make_patient(name=f"Other {next(_serial)}")
        if booking.kind in ("session", "custom"):
            caller.create(
                f"/v1/patients/{other['id']}/past-sessions",
                {"treatment_type_id": types["consultation"]["id"], "performed_at": consultation_at},
            )
        return other["id"]

    lapsed = [b for b in spec.others if b.mode == "lapsed"]
    for booking in lapsed:
        place(booking, someone(booking))
    if lapsed:
        clock.advance(minutes=11)  # frontend holds last 10 minutes
    for booking in [b for b in spec.others if b.mode != "lapsed"]:
        place(booking, someone(booking))
    for booking in spec.own:
        place(booking, the_patient["id"])
    return Clinic(caller, zone, today, clinic, rooms, practitioners, types, the_patient, searched)


def check_slot_shape(c: Clinic, slot: dict, now: datetime, params: dict) -> None:
    timing = c.searched
    start = instant(slot["starts_at"])
    assert slot["clinic_id"] == c.clinic["id"] and slot["treatment_type_id"] == timing["id"], slot
    assert start >= now + NOTICE and instant(params["start"]) <= start < instant(params["end"]), slot
    local_start = start.astimezone(c.zone)
    assert local_start.minute % GRID == 0 and local_start.second == 0, slot
    assert instant(slot["procedure_starts_at"]) == start + timedelta(minutes=timing["numbing_minutes"]), slot
    assert instant(slot["ends_at"]) == instant(slot["procedure_starts_at"]) + timedelta(
        minutes=timing["procedure_minutes"] + timing["aftercare_minutes"]
    ), slot
    for field in ("practitioner_id", "room_id"):
        if field in params:
            assert slot[field] == params[field], slot


EXAMPLES = int(os.environ.get("AVAILABILITY_PROPERTY_EXAMPLES", 20))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# Two hand-made clinics that every run checks first (Hypothesis's explicit examples), so neither
# property can pass vacuously. Bookings fall on day 1 (Saturday 9 January 2027, London on GMT).
GAP = Spec(
    zone="Europe/London",
    now=datetime(2027, 1, 8, 8, tzinfo=UTC),
    opening=(8 * 60, 20 * 60),
    numbing_area=0,
    devices=None,
    rooms=(True, True),
    staff=(Staff(True, ((), ((9 * 60, 17 * 60),), ())), Staff(True, ((), ((9 * 60, 13 * 60), (13 * 60, 16 * 60)), ()))),
    searched="session",
    custom=(30, 5, 20, 5, 10),
    others=(
        Booking("session", 0, 0, 1, 60, "book"),  # 10:00, room 0 until 11:20
        Booking("review", 0, 1, 1, 240, "book"),  # 13:00-13:15: inside the numbing of a session at 12:45
        Booking("session", 1, 1, 1, 300, "hold"),  # 14:00
        Booking("review", 1, 0, 1, 150, "lapsed"),
    ),  # 11:30, lapsed
    own=(Booking("review", 1, 1, 1, 30, "book"),),  # the patient's own review at 09:30
    consulted=True,
    last_session=None,
    contraindicated=False,
    closure=None,
    time_off=((0, 1, 15 * 60 + 10, 30),),
)  # a session at 14:00 ends just as it begins
# A numbing area of one chair and one device: a custom session (numbing 30, cream 5, needling 20,
# aftercare 5, turnover 10) needs a chair for 30 minutes, then a room for 35 and the device for 20.
POOLS = replace(
    GAP,
    numbing_area=1,
    devices=1,
    searched="custom",
    others=(
        Booking("session", 0, 0, 1, 60, "book"),  # 10:00: chair 10:00-10:30, room 0 10:30-11:20, device 10:30-11:00
        Booking("custom", 1, 1, 1, 135, "book"),  # 11:15: chair 11:15-11:45, room 1 11:45-12:20, device 11:45-12:05
        Booking("session", 1, 1, 1, 5 * 60, "hold"),
    ),
)  # 14:00
# The same with one room: a session at 13:30 would still be cleaning the room when the 14:00 one needs it.
ONE_ROOM = replace(
    POOLS,
    rooms=(True,),
    others=tuple(replace(b, room=0) for b in POOLS.others),
    own=(Booking("review", 1, 0, 1, 30, "book"),),
)


def soundness_cases():
    return st.integers(1, 3).flatmap(
        lambda days: st.tuples(
            st.just(days),
            specs(days=tuple(range(days))),
            st.sampled_from(("", "", "evening", "practitioner", "room")),
            st.integers(10, 30),
        )
    )


def test_every_slot_offered_can_be_held(app, client, clock):
    """Soundness: each slot offered to the patient is held (then released) with a 201."""
    held = []

    @PROPERTY
    @example(case=(2, GAP, "", 40))
    @example(case=(2, POOLS, "", 40))
    @example(case=(2, ONE_ROOM, "evening", 40))
    @given(case=soundness_cases())
    def check(case):
        days, spec, filter_, limit = case
        c = build_clinic(app, client, clock, spec)
        extra = {
            "": {},
            "evening": {"order": "evening"},
            "practitioner": {"practitioner_id": c.practitioners[-1]["id"]},
            "room": {"room_id": c.rooms[-1]["id"]},
        }[filter_]
        params = c.query(0, days, limit=limit, **extra)
        answer = available(c.caller, **params)
        note(f"now {clock.now.isoformat()}, offered: {[s['starts_at'] for s in answer['data']]}")
        assert len(answer["data"]) <= params["limit"]
        if answer["data"]:
            assert answer["reason"] is None
        seen = set()
        for slot in answer["data"]:
            check_slot_shape(c, slot, clock.now, params)
            assert slot["starts_at"] not in seen, slot  # one slot per start
            seen.add(slot["starts_at"])
            response = hold(c.caller, slot, c.patient["id"])
            assert response.status_code == 201, (slot, response.get_json())
            held.append(slot)

    check()
    assert len(held) >= 40  # not vacuous: the explicit examples alone offer more


# Refusals that do not depend on the room (the practitioner's hours at the clinic, or their
# qualification), or on the practitioner and room either (the patient's rules at this start):
# the booking engine checks these before the resources, so trying further rooms, or further
# practitioners and rooms, would get the same answer. Skipping them only saves time.
NOT_THE_ROOM = {"outside_working_hours"}
NOT_THE_PLACE = {"interval_too_short", "consultation_required", "contraindicated", "course_complete"}


def brute_force(c: Clinic, first: datetime, end: datetime) -> dict[str, set[datetime]]:
    """For each practitioner, the local grid starts in [first, end) it can be held at, in some room."""
    holdable = defaultdict(set)
    start = first
    while start < end:
        for practitioner in c.practitioners:
            code = None
            for room in c.rooms:
                response = hold(
                    c.caller,
                    {
                        "clinic_id": c.clinic["id"],
                        "practitioner_id": practitioner["id"],
                        "room_id": room["id"],
                        "treatment_type_id": c.searched["id"],
                        "starts_at": start.isoformat(),
                    },
                    c.patient["id"],
                )
                body = response.get_json()
                assert response.status_code in (201, 409, 422), body
                if response.status_code == 201:
                    holdable[practitioner["id"]].add(start)
                    break
                code = body["code"]
                if code in NOT_THE_ROOM | NOT_THE_PLACE or str(body.get("reason")).startswith("practitioner_"):
                    break
            if code in NOT_THE_PLACE:
                break
        start += timedelta(minutes=GRID)  # the local grid: both zones are whole hours off UTC
    return holdable


def first_grid_start(c: Clinic, start: datetime, now: datetime) -> datetime:
    start = max(start, now + NOTICE).astimezone(c.zone)
    while start.minute % GRID or start.second or start.microsecond:
        start = (start + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return start.astimezone(UTC)


COMPLETENESS_EXAMPLES = int(os.environ.get("AVAILABILITY_COMPLETENESS_EXAMPLES", 6))


def test_no_bookable_start_is_missed(app, client, clock):
    """Completeness: the starts offered are exactly those a brute-force hold finds, with and without
    practitioner_id."""
    found = []

    @settings(PROPERTY, max_examples=COMPLETENESS_EXAMPLES)
    @example(case=(1, GAP))
    @example(case=(1, POOLS))
    @example(case=(1, ONE_ROOM))
    @given(case=st.sampled_from((1, 0, 1, 2)).flatmap(lambda day: st.tuples(st.just(day), specs(days=(day,)))))
    def check(case):
        day, spec = case
        c = build_clinic(app, client, clock, spec)
        # 08:00 to 19:00 local of one day (44 grid starts): most shifts begin and end inside.
        first, end = local(c.day(day), 8 * 60, c.zone), local(c.day(day), 19 * 60, c.zone)
        holdable = brute_force(c, first_grid_start(c, first, clock.now), end)
        params = c.query(0, 0, start=first.isoformat(), end=end.isoformat())
        answer = available(c.caller, **params)
        note(f"now {clock.now.isoformat()}, brute force: {dict(holdable)}")
        assert set(starts(answer)) == set().union(*holdable.values()), answer
        assert len(starts(answer)) == len(answer["data"])  # one slot per start
        for practitioner in c.practitioners:
            mine = available(c.caller, **params, practitioner_id=practitioner["id"])
            assert set(starts(mine)) == holdable[practitioner["id"]], (practitioner["id"], mine)
        found.append(len(answer["data"]))

    check()
    assert sum(found) >= 30  # not vacuous: the explicit examples alone offer more


# =========================================================================== the response, written out


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ENGINE_ZONES),
    starts=st.lists(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
        max_size=5,
    ),
    reason=st.sampled_from(
        (
            None,
            {"code": "interval_too_short", "detail": "Too soon.", "earliest_start": "2027-03-28T10:00:00+01:00"},
            {"code": "course_complete", "detail": "Done.", "earliest_start": None},
        )
    ),
)
def test_the_written_out_dump_is_marshmallows(zone, starts, reason):
    """AvailabilitySchema.dump writes slots out by hand: the same JSON, key order included."""
    import json
    from types import SimpleNamespace

    import marshmallow as ma

    from api.availability import AvailabilitySchema

    clinic = SimpleNamespace(timezone=zone)
    data = [
        SimpleNamespace(
            clinic_id="cln",
            practitioner_id="prt",
            room_id="roo",
            treatment_type_id="trt",
            starts_at=s,
            procedure_starts_at=s + timedelta(minutes=30),
            ends_at=s + timedelta(minutes=70, seconds=s.second),
            clinic=clinic,
        )
        for s in starts
    ]
    body = {"data": data, "reason": reason}
    schema = AvailabilitySchema()
    assert json.dumps(schema.dump(body)) == json.dumps(ma.Schema.dump(schema, body))


# --- Settings from the environment: one parser for the web app and the scheduler ------------------------


@pytest.mark.parametrize(
    "name, value",
    [
        ("AVAILABILITY_GRID_MINUTES", "0"),
        ("AVAILABILITY_GRID_MINUTES", "-15"),
        ("AVAILABILITY_GRID_MINUTES", "7.5"),
        ("AVAILABILITY_MIN_NOTICE_MINUTES", "-1"),
        ("AVAILABILITY_HORIZON_DAYS", "0"),
        ("AVAILABILITY_HORIZON_DAYS", "ninety"),
    ],
)
def test_a_bad_availability_setting_stops_the_app_and_the_scheduler_at_start_naming_it(name, value):
    from api import config
    from schedulers.config import SchedulerSettings

    for read in (config.from_environment, SchedulerSettings.from_environment):
        with pytest.raises(ValueError, match=name):
            read({name: value})


def test_the_app_and_the_scheduler_read_the_same_availability_settings():
    from api import config
    from schedulers.config import SchedulerSettings

    def scheduler(env):
        search = SchedulerSettings.from_environment(env).follow_ups.search
        return search.grid_minutes, search.min_notice // timedelta(minutes=1), search.horizon.days

    def app(env):
        values = config.from_environment(env)
        return tuple(values[f"AVAILABILITY_{name}"] for name in ("GRID_MINUTES", "MIN_NOTICE_MINUTES", "HORIZON_DAYS"))

    env = {"AVAILABILITY_GRID_MINUTES": "10", "AVAILABILITY_MIN_NOTICE_MINUTES": "0", "AVAILABILITY_HORIZON_DAYS": "60"}
    assert scheduler(env) == app(env) == (10, 0, 60)
    assert scheduler({}) == app({}) == (15, 120, 90)
