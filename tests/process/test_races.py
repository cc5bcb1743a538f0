"""Races against real servers: gunicorn with several workers on SQLite and PostgreSQL.

The database has the last word: whatever the workers interleave, exactly one
booking of a slot wins and no resource is ever claimed twice.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

import pytest
import sqlalchemy as sa

from api import create_app
from models import Appointment, make_engine

from ..helpers import make_organization
from ..scaffold import fresh_database, running_gunicorn

WORKERS = 4


def _next_monday(weeks_ahead: int = 1) -> datetime:
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday() + 7 * weeks_ahead)
    return datetime.combine(monday, clock_time(0), UTC)


@pytest.fixture(scope="module")
def live(backend, tmp_path_factory):
    """A real gunicorn server on its own, freshly migrated database, with a small clinic."""
    name, test_url = backend
    with fresh_database(name, test_url, tmp_path_factory.mktemp("race"), "race") as url:
        world = _seed(url)
        with running_gunicorn(url, workers=WORKERS) as base:
            yield {**world, "base": base, "url": url}


def _seed(url: str) -> dict:
    """Through the API of an app on the same database: two rooms, two practitioners, 60 patients."""
    app = create_app({"DATABASE_URL": url})
    client = app.test_client()
    admin = make_organization(app, client, "Race Clinics")
    clinic = admin.make_clinic(timezone="UTC")
    rooms = [admin.make_room(clinic["id"], name=f"Room {i}")["id"] for i in (1, 2)]
    types = {kind: admin.make_treatment_type(kind)["id"] for kind in ("consultation", "microneedling")}
    practitioners = []
    for i in (1, 2):
        p = admin.make_practitioner([clinic["id"]], name=f"Dr {i}", treatment_type_ids=list(types.values()))
        week = [{"clinic_id": clinic["id"], "weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
        assert admin.put(f"/v1/practitioners/{p['id']}/working-hours", json=week).status_code == 200
        practitioners.append(p["id"])
    admin.patch(
        f"/v1/clinics/{clinic['id']}",
        json={"opening_hours": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]},
    )
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    patients = []
    for i in range(60):
        patient = admin.make_patient(name=f"Patient {i}", email=f"p{i}@example.com")
        admin.create(
            f"/v1/patients/{patient['id']}/past-sessions",
            {"treatment_type_id": types["consultation"], "performed_at": yesterday},
        )
        patients.append(patient["id"])
    app.extensions["db_engine"].dispose()
    return {
        "token": admin.token,
        "clinic": clinic["id"],
        "rooms": rooms,
        "practitioners": practitioners,
        "types": types,
        "patients": patients,
    }


def _request(live, method: str, path: str, body=None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{live['base']}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {live['token']}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _slot(live, patient: str, starts_at: datetime, room: int = 0, practitioner: int = 0) -> dict:
    return {
        "clinic_id": live["clinic"],
        "room_id": live["rooms"][room],
        "practitioner_id": live["practitioners"][practitioner],
        "treatment_type_id": live["types"]["microneedling"],
        "patient_id": patient,
        "starts_at": starts_at.isoformat(),
    }


def test_fifty_concurrent_bookings_of_one_slot_make_exactly_one(live):
    starts_at = _next_monday() + timedelta(hours=10)
    bodies = [_slot(live, patient, starts_at) for patient in live["patients"][:50]]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda body: _request(live, "POST", "/v1/appointments", body), bodies))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    assert all(body["code"] == "slot_unavailable" for status, body in results if status == 409)
    winner = next(body["id"] for status, body in results if status == 201)
    for status, body in results:
        if status == 409:  # the losers are told what they collided with
            assert winner in {c.get("appointment_id") for c in body["conflicts"]}, body
    engine = make_engine(live["url"])
    with engine.connect() as conn:
        booked = conn.scalar(
            sa.select(sa.func.count())
            .select_from(Appointment)
            .where(Appointment.starts_at == starts_at, Appointment.status == "booked")
        )
    engine.dispose()
    assert booked == 1


def test_a_storm_of_bookings_reschedules_and_cancels_leaves_no_overlap(live):
    rng = random.Random(7)
    day = _next_monday(weeks_ahead=3) + timedelta(hours=8)
    grid = [day + timedelta(minutes=15 * i) for i in range(36)]  # 08:00 .. 16:45
    patients = live["patients"][:40]
    booked: list[str] = []

    def operation(i: int) -> int:
        roll = rng.random()
        if roll < 0.6 or not booked:
            status, body = _request(
                live,
                "POST",
                "/v1/appointments",
                _slot(live, patients[i % len(patients)], rng.choice(grid), rng.randrange(2), rng.randrange(2)),
            )
            if status == 201:
                booked.append(body["id"])
        elif roll < 0.8:
            status, _ = _request(
                live,
                "PATCH",
                f"/v1/appointments/{rng.choice(booked)}",
                {"starts_at": rng.choice(grid).isoformat(), "room_id": rng.choice(live["rooms"])},
            )
        else:
            status, _ = _request(
                live, "POST", f"/v1/appointments/{rng.choice(booked)}/cancel", {"reason": "patient_request"}
            )
        return status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(operation, range(240)))
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses.count(201) > 5, "the storm must actually book"

    engine = make_engine(live["url"])
    with engine.connect() as conn:
        overlapping_claims = conn.scalar(
            sa.text(
                "SELECT count(*) FROM claims a JOIN claims b ON a.resource = b.resource AND a.id < b.id "
                "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
            )
        )
        overlapping_rooms = conn.scalar(
            sa.text(
                "SELECT count(*) FROM appointments a JOIN appointments b ON a.room_id = b.room_id "
                "AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
                "WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
            )
        )
        overlapping_patients = conn.scalar(
            sa.text(
                "SELECT count(*) FROM appointments a JOIN appointments b ON a.patient_id = b.patient_id "
                "AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
                "WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
            )
        )
        # Every start of the storm lies within one day, closer than the 28-day minimum: a patient
        # may hold at most one live session of it, however the requests interleaved.
        patients_twice = conn.scalar(
            sa.text(
                "SELECT count(*) FROM appointments a JOIN appointments b ON a.patient_id = b.patient_id "
                "AND a.id < b.id WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
            )
        )
        live_appointments = conn.scalar(sa.text("SELECT count(*) FROM appointments WHERE status = 'booked'"))
    engine.dispose()
    assert (overlapping_claims, overlapping_rooms, overlapping_patients, patients_twice) == (0, 0, 0, 0)
    assert live_appointments > 0


def test_the_database_refuses_an_overlap_the_checks_missed(world, monkeypatch):
    """Simulate the check-then-insert race: the application's check sees nothing,
    the database constraint (exclusion on PostgreSQL, trigger on SQLite) says no."""
    from booking.services import queries

    world.consulted()
    first = world.book()
    other = world.new_patient(name="Racer", email="racer@example.com")
    world.consulted(other["id"])
    # The booking's check (claims_in_the_way) sees nothing once: only the database can refuse.
    blind = _blind_once(queries.claims_in_the_way, ([], []))
    monkeypatch.setattr(queries, "claims_in_the_way", blind)
    response = world.caller.post("/v1/appointments", json=world.slot(patient_id=other["id"]))
    # The check ran blind (call 1), the database refused, and the refusal named the winner (call 2).
    assert blind.calls["n"] == 2
    assert response.status_code == 409, response.get_json()
    body = response.get_json()
    assert body["code"] == "slot_unavailable"
    assert first["id"] in {c.get("appointment_id") for c in body["conflicts"]}
    listed = world.caller.get(f"/v1/appointments?patient_id={other['id']}").get_json()["data"]
    assert listed == []


def _blind_once(lookup, nothing):
    calls = {"n": 0}

    def blind(*args, **kwargs):
        calls["n"] += 1
        return nothing if calls["n"] == 1 else lookup(*args, **kwargs)

    blind.calls = calls  # type: ignore[attr-defined]
    return blind


def _exchange(live, method: str, path: str, body=None, headers=None) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one request to the live server."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{live['base']}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {live['token']}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def test_of_ten_concurrent_changes_with_the_same_if_match_exactly_one_wins(live):
    status, headers, patient = _exchange(live, "POST", "/v1/patients", {"name": "Contended"})
    assert status == 201, patient
    path = f"/v1/patients/{patient['id']}"
    tag = headers["ETag"]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(lambda i: _exchange(live, "PATCH", path, {"name": f"Writer {i}"}, {"If-Match": tag}), range(10))
        )
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * 9, statuses
    assert all(body["code"] == "precondition_failed" for status, _, body in results if status == 412)
    winner = next(body["name"] for status, _, body in results if status == 200)
    assert _exchange(live, "GET", path)[2]["name"] == winner


def test_ten_concurrent_retries_with_one_idempotency_key_create_one_object(live):
    body, key = {"name": "Retried Patient", "email": "retried@example.com"}, {"Idempotency-Key": "race-key-1"}
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: _exchange(live, "POST", "/v1/patients", body, key), range(10)))
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert all(body["code"] == "idempotency_key_in_flight" for status, _, body in results if status == 409)
    assert len({body["id"] for status, _, body in results if status == 201}) == 1
    status, headers, _replayed = _exchange(live, "POST", "/v1/patients", body, key)
    assert status == 201 and headers.get("Idempotent-Replayed") == "true"
    engine = make_engine(live["url"])
    with engine.connect() as conn:
        created = conn.scalar(sa.text("SELECT count(*) FROM patients WHERE email = 'retried@example.com'"))
    engine.dispose()
    assert created == 1


# --- clinical rules that a concurrent request must not walk around (docs/rules.md, the guards)


def _consulted_patient(live, name: str) -> str:
    status, patient = _request(live, "POST", "/v1/patients", {"name": name})
    assert status == 201, patient
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    status, body = _request(
        live,
        "POST",
        f"/v1/patients/{patient['id']}/past-sessions",
        {"treatment_type_id": live["types"]["consultation"], "performed_at": yesterday},
    )
    assert status == 201, body
    return patient["id"]


def test_a_booking_and_a_past_session_racing_for_one_patients_weeks_never_both_pass(live):
    """Each pair is a session booked in two weeks and one recorded an hour ago: 28 days apart
    neither is; under the patient's lock exactly one of them wins, in either order."""
    patients = [_consulted_patient(live, f"Interval racer {i}") for i in range(6)]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    monday = _next_monday(weeks_ahead=2) + timedelta(hours=10)

    def send(job):
        i, what = job
        if what == "book":
            return i, _request(live, "POST", "/v1/appointments", _slot(live, patients[i], monday + timedelta(days=i)))
        return i, _request(
            live,
            "POST",
            f"/v1/patients/{patients[i]}/past-sessions",
            {"treatment_type_id": live["types"]["microneedling"], "performed_at": an_hour_ago},
        )

    jobs = [(i, what) for i in range(len(patients)) for what in ("book", "record")]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    for i in range(len(patients)):
        statuses = sorted(status for j, (status, _) in results if j == i)
        assert statuses == [201, 422], (i, results)
        assert all(body["code"] == "interval_too_short" for j, (status, body) in results if j == i and status == 422)


def test_two_bookings_of_one_patient_racing_are_counted_in_calendar_days(live):
    """Pairs booked at once, 18:00 on one date and 08:00 on a later one (the clinic is on UTC):
    on the 27th date exactly one of the two wins, under the patient's lock; on the 28th date,
    27 days 14 hours later, both do (docs/rules.md, rule 5)."""
    patients = [_consulted_patient(live, f"Calendar racer {i}") for i in range(8)]
    # Clear of the other tests' bookings on the shared server: the storm's (week 3, up to about
    # 18:05 in the same rooms, as far as its timing lets it book) could take an 18:00 slot here.
    monday = _next_monday(weeks_ahead=5)

    def pair(i: int) -> list[tuple[int, dict]]:
        gap, seat = (27, 0) if i < 4 else (28, 1)  # the 28-day pairs in the other room, with the other practitioner
        first = monday + timedelta(days=i, hours=18)
        second = datetime.combine((first + timedelta(days=gap)).date(), clock_time(8), UTC)
        return [(i, _slot(live, patients[i], at, room=seat, practitioner=seat)) for at in (first, second)]

    def send(job):
        i, slot = job
        return i, _request(live, "POST", "/v1/appointments", slot)

    jobs = [job for i in range(len(patients)) for job in pair(i)]
    random.shuffle(jobs)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    for i in range(len(patients)):
        mine = [(status, body) for j, (status, body) in results if j == i]
        statuses = sorted(status for status, _ in mine)
        assert statuses == ([201, 422] if i < 4 else [201, 201]), (i, mine)
        assert all(body["code"] == "interval_too_short" for status, body in mine if status == 422)


def test_concurrent_courses_of_one_type_for_one_patient_make_one_active(live):
    patient = _consulted_patient(live, "Course racer")
    body = {"treatment_type_id": live["types"]["microneedling"], "indication": "acne_scars"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: _request(live, "POST", f"/v1/patients/{patient}/courses", body), range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 7, results
    winner = next(b["id"] for status, b in results if status == 201)
    assert all(b["code"] == "course_already_active" and b["course_id"] == winner for s, b in results if s == 409)


def _clinic_of_two(live, name: str) -> dict:
    """A clinic of its own (rooms and practitioners), so that no other test's bookings count there."""
    hours = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    status, clinic = _request(live, "POST", "/v1/clinics", {"name": name, "timezone": "UTC", "opening_hours": hours})
    assert status == 201, clinic
    place = {
        "clinic": clinic["id"],
        "rooms": [],
        "practitioners": [],
        "types": live["types"],
        "base": live["base"],
        "token": live["token"],
    }
    for i in (1, 2):
        status, room = _request(
            live, "POST", f"/v1/clinics/{clinic['id']}/rooms", {"name": f"Room {i}", "capabilities": ["needling"]}
        )
        assert status == 201, room
        status, practitioner = _request(
            live,
            "POST",
            "/v1/practitioners",
            {
                "name": f"Dr {name} {i}",
                "clinic_ids": [clinic["id"]],
                "treatment_type_ids": [live["types"]["microneedling"]],
            },
        )
        assert status == 201, practitioner
        week = [{"clinic_id": clinic["id"], **h} for h in hours]
        assert _request(live, "PUT", f"/v1/practitioners/{practitioner['id']}/working-hours", week)[0] == 200
        place["rooms"].append(room["id"])
        place["practitioners"].append(practitioner["id"])
    return place


def test_switching_devices_on_while_bookings_race_leaves_every_live_booking_a_device(live):
    """Bookings race a PATCH that switches the clinic to one device: whichever commits first,
    every live session ends up claiming a device unit (so none needles beside another)."""
    patients = [_consulted_patient(live, f"Device racer {i}") for i in range(12)]
    engine = make_engine(live["url"])
    try:
        for round_ in range(3):
            place = _clinic_of_two(live, f"Devices {round_}")
            clinic = f"/v1/clinics/{place['clinic']}"
            day = _next_monday(weeks_ahead=2) + timedelta(hours=10)
            # Two pairs whose needlings would overlap (10 minutes apart, other room and practitioner).
            bodies = [
                _slot(
                    place,
                    patients[4 * round_ + 2 * pair + k],
                    day + timedelta(hours=2 * pair, minutes=10 * k),
                    room=k,
                    practitioner=k,
                )
                for pair in range(2)
                for k in range(2)
            ]
            jobs = [("PATCH", clinic, {"device_count": 1})] + [("POST", "/v1/appointments", b) for b in bodies]
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                results = list(pool.map(lambda job: _request(live, *job), jobs))
            assert not [r for r in results if r[0] >= 500], results
            patched_status, patched = results[0]
            assert patched_status in (200, 409), results[0]
            if patched_status == 409:
                assert patched["code"] in ("device_count_too_low", "bookings_changing"), patched
            if _request(live, "GET", clinic)[1]["device_count"] == 1:
                with engine.connect() as conn:
                    without_device = conn.scalar(
                        sa.text(
                            "SELECT count(*) FROM appointments a "
                            "WHERE a.clinic_id = :clinic AND a.status <> 'cancelled' "
                            "AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.appointment_id = a.id "
                            "AND c.resource LIKE 'device:%')"
                        ),
                        {"clinic": place["clinic"]},
                    )
                assert without_device == 0, results
                assert len([s for s, _ in results[1:] if s == 201]) <= 2, results  # one of each pair at most
    finally:
        engine.dispose()
