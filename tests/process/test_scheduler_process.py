"""The scheduler for real: `python -m schedulers` processes beside gunicorn, on SQLite and PostgreSQL.

The jobs themselves are pinned in-process in tests/services/test_follow_ups.py; here the
processes are: ticks of a real clock, a lease between processes, SIGKILL in the
middle of a sweep and SIGTERM at the end. Real processes read the real clock, so
sessions "in the past" are booked from this process with the domain clock moved
back and committed, as a clinic's history would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import count
from unittest import mock

import pytest
import sqlalchemy as sa

from api import create_app
from booking.domain import clock
from booking.services import appointments
from booking.services.appointments import SlotRequest
from migrations import upgrade
from models import make_engine, make_sessionmaker, writer

from .. import scaffold
from ..helpers import make_organization
from ..scaffold import running_gunicorn, scratch_database
from .test_races import _request

TICK = "0.5"  # seconds between two runs of each job


# --- databases: an empty migrated one per test ---------------------------------------------------


@pytest.fixture(scope="module")
def databases(backend, tmp_path_factory):
    """(backend name, fresh) where fresh() returns the url of an empty migrated database: a copy
    of a migrated file on SQLite; on PostgreSQL the module's database, emptied, which is much
    cheaper than creating and dropping one per test."""
    name, test_url = backend
    if name == "sqlite":
        folder = tmp_path_factory.mktemp("scheduler")
        source = folder / "migrated.sqlite3"
        upgrade(f"sqlite:///{source}")
        made = count()

        def fresh() -> str:
            target = folder / f"db{next(made)}.sqlite3"
            shutil.copyfile(source, target)
            return f"sqlite:///{target}"

        yield name, fresh
        return

    with scratch_database(test_url, "sched") as url:
        engine = make_engine(url)
        tables = ", ".join(f'"{t}"' for t in sa.inspect(engine).get_table_names() if t != "alembic_version")

        def fresh() -> str:
            with engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
            return url

        try:
            yield name, fresh
        finally:
            engine.dispose()


def postgresql_only(databases) -> None:
    if databases[0] != "postgresql":
        pytest.skip("several scheduler processes at once are pinned on PostgreSQL (the production setup)")


# --- processes ----------------------------------------------------------------------------------


class Scheduler:
    """One `python -m schedulers` process, its log in a file."""

    def __init__(self, url: str, log_path, lease_seconds: float):
        self.log_path = log_path
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "LOG_LEVEL": "INFO",
            "SCHEDULER_LEASE_SECONDS": str(lease_seconds),
            "FOLLOW_UP_INTERVAL_SECONDS": TICK,
            "HOLD_EXPIRY_INTERVAL_SECONDS": TICK,
            "REMINDER_INTERVAL_SECONDS": TICK,
            "WAITLIST_INTERVAL_SECONDS": TICK,
            "SCHEDULER_MISFIRE_GRACE_SECONDS": "5",
        }
        with open(log_path, "wb") as log:
            self.process = scaffold.start(scaffold.SCHEDULER_COMMAND, env=env, stdout=log, stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def took_the_lease(self) -> bool:
        return "took the scheduler lease" in self.log

    def stop(self, timeout: float = 10) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture
def start_scheduler(tmp_path):
    """start_scheduler(url, lease_seconds=3) -> Scheduler; every one is stopped at the end."""
    started: list[Scheduler] = []

    def start(url: str, lease_seconds: float = 3) -> Scheduler:
        scheduler = Scheduler(url, tmp_path / f"scheduler-{len(started)}.log", lease_seconds)
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in started:
        if scheduler.process.poll() is None:
            scheduler.process.kill()
            scheduler.process.wait()


def gunicorn(url: str):
    return running_gunicorn(url)


def wait_for(condition, timeout: float = 30, every: float = 0.1, what: str = "condition"):
    """Poll until condition() is truthy and return it; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- a clinic and its history, written from this process --------------------------------------


class Clinic:
    """A UTC clinic open around the clock, two rooms, two practitioners; history is written
    through the booking services with the domain clock moved to when it happened."""

    def __init__(self, url: str):
        self.url = url
        self.now = datetime.now(UTC)
        self.yesterday = datetime.combine(self.now.date() - timedelta(days=1), datetime.min.time(), UTC)
        app = create_app({"DATABASE_URL": url})
        self.caller = make_organization(app, app.test_client(), "Scheduler Clinics")
        self.token = self.caller.token
        self.organization_id = self.caller.organization_id
        around_the_clock = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
        self.clinic = self.caller.make_clinic(timezone="UTC", opening_hours=around_the_clock)["id"]
        self.rooms = [self.caller.make_room(self.clinic, name=f"Room {i}")["id"] for i in (1, 2)]
        self.consultation = self.caller.make_treatment_type("consultation")["id"]
        self.microneedling = self.caller.make_treatment_type("microneedling")["id"]
        self.practitioners = []
        for i in (1, 2):
            practitioner = self.caller.make_practitioner(
                [self.clinic], name=f"Dr {i}", treatment_type_ids=[self.consultation, self.microneedling]
            )
            hours = [{**day, "clinic_id": self.clinic} for day in around_the_clock]
            response = self.caller.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=hours)
            assert response.status_code == 200, response.get_json()
            self.practitioners.append(practitioner["id"])
        self._app = app
        self._engine = make_engine(url)
        self.sessions = make_sessionmaker(writer(self._engine))
        # Checks read without BEGIN IMMEDIATE: polling for the write lock would starve the scheduler.
        self.reader = make_sessionmaker(self._engine)

    def close(self) -> None:
        self._app.extensions["db_engine"].dispose()
        self._engine.dispose()

    def consulted_patient(self, name: str, *, max_sessions: int | None = None) -> tuple[str, str | None]:
        """A patient with a consultation a month ago, and a course when max_sessions is given."""
        patient = self.caller.make_patient(name=name, email=f"{name.lower().replace(' ', '.')}@example.com")["id"]
        self.caller.create(
            f"/v1/patients/{patient}/past-sessions",
            {"treatment_type_id": self.consultation, "performed_at": (self.now - timedelta(days=30)).isoformat()},
        )
        course = None
        if max_sessions is not None:
            course = self.caller.make_course(patient, self.microneedling, max_sessions=max_sessions)["id"]
        return patient, course

    @contextmanager
    def at(self, moment: datetime):
        """One committed transaction with the domain clock at `moment`."""
        with mock.patch.object(clock, "now", return_value=moment), self.sessions.begin() as db:
            yield db

    def slot(
        self,
        patient: str,
        starts_at: datetime,
        *,
        kind="microneedling",
        practitioner=0,
        room=0,
        course: str | None = None,
    ) -> SlotRequest:
        return SlotRequest(
            self.clinic,
            self.practitioners[practitioner],
            self.rooms[room],
            getattr(self, kind),
            patient,
            starts_at,
            course_id=course,
        )

    def booked(self, request: SlotRequest, *, booked_at: datetime) -> str:
        with self.at(booked_at) as db:
            appointment = appointments.book(db, self.organization_id, request)
            appointment.created_at = booked_at
        return appointment.id

    def completed(self, request: SlotRequest, *, completed_at: datetime) -> str:
        appointment_id = self.booked(request, booked_at=request.starts_at - timedelta(days=1))
        with self.at(completed_at) as db:
            appointments.complete(db, self.organization_id, appointment_id)
        return appointment_id

    def lapsed_hold(self, request: SlotRequest, *, placed_at: datetime) -> str:
        with self.at(placed_at) as db:
            hold = appointments.place_hold(db, self.organization_id, request, ttl=timedelta(minutes=10))
        return hold.id

    def completed_sessions(self, number: int) -> list[str]:
        """`number` patients, each with one session completed a minute ago; two a day per
        practitioner, from yesterday backwards, so their follow-up windows overlap."""
        sessions = []
        for i in range(number):
            patient, _ = self.consulted_patient(f"Patient {i}")
            starts_at = self.yesterday - timedelta(days=i // 4) + timedelta(hours=9 + 4 * (i // 2 % 2))
            request = self.slot(patient, starts_at, practitioner=i % 2, room=i % 2)
            sessions.append(self.completed(request, completed_at=self.now - timedelta(minutes=1)))
        return sessions

    def scalar(self, sql: str, **params):
        with self.reader() as db:
            return db.scalar(sa.text(sql), params)

    def rows(self, sql: str, **params) -> list:
        with self.reader() as db:
            return [tuple(row) for row in db.execute(sa.text(sql), params)]

    def events_by_type(self) -> dict[str, int]:
        return dict(self.rows("SELECT type, count(*) FROM outbox_events GROUP BY type"))

    def repeated_event_keys(self) -> list:
        return self.rows("SELECT dedupe_key, count(*) FROM outbox_events GROUP BY dedupe_key HAVING count(*) > 1")


@pytest.fixture
def fresh_clinic(databases):
    clinics = []

    def make() -> Clinic:
        clinics.append(Clinic(databases[1]()))
        return clinics[-1]

    yield make
    for made in clinics:
        made.close()


# --- 1. end to end: complete a session over HTTP, the scheduler proposes, the patient books ----


def test_a_completed_session_is_proposed_and_held_and_booking_the_hold_confirms_it(fresh_clinic, start_scheduler):
    world = fresh_clinic()
    patient, _ = world.consulted_patient("Ada Lovelace", max_sessions=2)
    capped, capped_course = world.consulted_patient("Grace Hopper", max_sessions=2)
    # Her first session of two, before she came here: the one completed below is her last.
    world.caller.create(
        f"/v1/patients/{capped}/past-sessions",
        {
            "treatment_type_id": world.microneedling,
            "course_id": capped_course,
            "performed_at": (world.yesterday - timedelta(days=35)).isoformat(),
        },
    )
    session_start = world.yesterday + timedelta(hours=10)
    session = world.booked(world.slot(patient, session_start), booked_at=session_start - timedelta(days=3))
    last_session = world.booked(
        world.slot(capped, session_start, practitioner=1, room=1), booked_at=session_start - timedelta(days=3)
    )

    scheduler = start_scheduler(world.url)
    with gunicorn(world.url) as base:
        api = {"base": base, "token": world.token}
        status, completed = _request(api, "POST", f"/v1/appointments/{session}/complete")
        assert status == 200, completed

        def proposal():
            status, page = _request(api, "GET", f"/v1/follow-ups?patient_id={patient}")
            assert status == 200, page
            return page["data"]

        [follow_up] = wait_for(proposal, what="the follow-up proposal")
        assert follow_up["status"] == "proposed" and follow_up["appointment_id"] == session
        hold = follow_up["hold"]
        assert hold["source"] == "follow_up" and hold["status"] == "active"
        assert hold["practitioner_id"] == world.practitioners[0]  # free, so the same practitioner
        gap = datetime.fromisoformat(hold["starts_at"]) - session_start
        assert timedelta(days=28) <= gap <= timedelta(days=42), gap

        status, booked = _request(api, "POST", "/v1/appointments", {"hold_id": hold["id"]})
        assert status == 201, booked
        assert booked["starts_at"] == hold["starts_at"] and booked["hold_id"] == hold["id"]
        status, confirmed = _request(api, "GET", f"/v1/follow-ups/{follow_up['id']}")
        assert status == 200 and confirmed["status"] == "booked", confirmed
        assert confirmed["booked_appointment_id"] == booked["id"]

        status, completed = _request(api, "POST", f"/v1/appointments/{last_session}/complete")
        assert status == 200, completed

        def capped_follow_ups():
            _status, page = _request(api, "GET", f"/v1/follow-ups?patient_id={capped}")
            return page["data"]

        [nothing] = wait_for(capped_follow_ups, what="the capped course's follow-up record")
        assert (nothing["status"], nothing["hold"], nothing["reason"]["code"]) == (
            "not_needed",
            None,
            "course_complete",
        )
        wait_for(lambda: world.events_by_type().get("appointment.aftercare") == 2, what="aftercare events")
        assert scheduler.stop() == 0

    assert world.events_by_type() == {
        "appointment.created": 3,
        "appointment.completed": 2,
        "appointment.aftercare": 2,
        "follow_up.proposed": 1,
    }
    keys = {key for (key,) in world.rows("SELECT dedupe_key FROM outbox_events")}
    assert {
        f"follow_up:{session}",
        f"appointment.completed:{session}",
        f"appointment.created:{booked['id']}",
        f"aftercare:{last_session}",
    } <= keys
    assert world.repeated_event_keys() == []
    assert world.scalar("SELECT count(*) FROM holds WHERE source = 'follow_up'") == 1


# --- 2. two schedulers against one database: one acts, nothing is done twice ------------------


def test_two_schedulers_at_once_do_everything_exactly_once(databases, fresh_clinic, start_scheduler):
    postgresql_only(databases)
    world = fresh_clinic()
    sessions = world.completed_sessions(12)
    tomorrow_noon = world.yesterday + timedelta(days=2, hours=12)  # 12 to 36 hours ahead: the 48h reminder only
    soon = world.now.replace(second=0, microsecond=0) + timedelta(minutes=45)  # under 2 hours: both reminders
    three_days_ago = world.now - timedelta(days=3)
    for i in range(3):
        patient, _ = world.consulted_patient(f"Reminded {i}")
        world.booked(
            world.slot(patient, tomorrow_noon + timedelta(minutes=30 * i), kind="consultation"),
            booked_at=three_days_ago,
        )
    for i in range(2):
        patient, _ = world.consulted_patient(f"Soon {i}")
        world.booked(world.slot(patient, soon, kind="consultation", practitioner=i, room=i), booked_at=three_days_ago)
    for i in range(3):
        patient, _ = world.consulted_patient(f"Undecided {i}")
        world.lapsed_hold(
            world.slot(patient, tomorrow_noon + timedelta(days=2, hours=i), kind="consultation"),
            placed_at=world.now - timedelta(hours=1),
        )
    expected = {
        "appointment.created": 12 + 5,
        "appointment.completed": 12,  # written by the seeding
        "follow_up.proposed": 12,
        "appointment.aftercare": 12,
        "hold.expired": 3,
        "appointment.reminder": 3 + 2 * 2,
    }

    started = time.monotonic()
    # A lease comfortably longer than a stall of a busy test machine: no handover is expected here.
    first, second = start_scheduler(world.url, lease_seconds=5), start_scheduler(world.url, lease_seconds=5)
    wait_for(lambda: world.events_by_type() == expected, timeout=40, what=f"the events {expected}")
    time.sleep(max(0.0, 8 - (time.monotonic() - started)))  # both keep ticking over the finished work
    # One took the lease and kept it; counted before stopping, as the standby rightly takes
    # over once the holder stops.
    takes = [s.log.count("took the scheduler lease") for s in (first, second)]
    assert sorted(takes) == [0, 1], takes
    assert "lost the scheduler lease" not in first.log + second.log
    assert (first.stop(), second.stop()) == (0, 0)

    assert world.events_by_type() == expected
    assert world.repeated_event_keys() == []
    per_session = world.rows("SELECT appointment_id, count(*), min(status) FROM follow_ups GROUP BY appointment_id")
    assert sorted(per_session) == sorted((session, 1, "proposed") for session in sessions)
    assert _follow_up_holds_are_one_to_one(world) == 12


def _follow_up_holds_are_one_to_one(world: Clinic) -> int:
    """Every proposed follow-up has one live follow-up hold, and no such hold lacks a follow-up."""
    live_holds = world.rows("SELECT id FROM holds WHERE source = 'follow_up' AND outcome IS NULL")
    referenced = world.rows("SELECT hold_id FROM follow_ups WHERE status = 'proposed'")
    assert sorted(live_holds) == sorted(referenced), (live_holds, referenced)
    orphans = world.scalar(
        "SELECT count(*) FROM holds h WHERE h.source = 'follow_up' AND NOT EXISTS "
        "(SELECT 1 FROM follow_ups f WHERE f.hold_id = h.id)"
    )
    assert orphans == 0
    return len(live_holds)


# --- 3. SIGKILL in the middle of a sweep, then a new scheduler ----------------------------------


def test_a_scheduler_killed_mid_sweep_is_replaced_and_nothing_is_lost_or_doubled(fresh_clinic, start_scheduler):
    world = fresh_clinic()
    sessions = world.completed_sessions(20)
    proposals = "SELECT count(*) FROM follow_ups"

    doomed = start_scheduler(world.url, lease_seconds=3)
    wait_for(lambda: 0 < world.scalar(proposals) < 20, timeout=30, every=0.02, what="a sweep in progress")
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    made_before = world.scalar(proposals)
    assert made_before < 20, "the kill came too late to land mid-sweep"

    assert doomed.process.returncode == -signal.SIGKILL

    successor = start_scheduler(world.url, lease_seconds=3)
    # The dead holder's lease runs out after its 3 s; the rest is the successor's start-up.
    wait_for(successor.took_the_lease, timeout=3 + 10, what="the successor to take the lapsed lease")
    wait_for(lambda: world.scalar(proposals) == 20, timeout=40, what="the successor to finish the sweep")
    wait_for(lambda: world.events_by_type().get("appointment.aftercare") == 20, what="aftercare events")
    assert successor.stop() == 0

    per_session = world.rows("SELECT appointment_id, count(*), min(status) FROM follow_ups GROUP BY appointment_id")
    assert sorted(per_session) == sorted((session, 1, "proposed") for session in sessions)
    assert _follow_up_holds_are_one_to_one(world) == 20
    assert world.events_by_type() == {
        "appointment.created": 20,
        "appointment.completed": 20,
        "follow_up.proposed": 20,
        "appointment.aftercare": 20,
    }
    assert world.repeated_event_keys() == []


# --- 4. SIGTERM: a clean exit that hands the lease over at once ---------------------------------


def test_sigterm_stops_the_scheduler_and_releases_the_lease_to_the_next_at_once(fresh_clinic, start_scheduler):
    world = fresh_clinic()
    lease_seconds = 30
    first = start_scheduler(world.url, lease_seconds=lease_seconds)
    wait_for(first.took_the_lease, what="the first scheduler to take the lease")
    [(_, held_until)] = world.rows("SELECT holder, expires_at FROM scheduler_leases")

    stopping = time.monotonic()
    assert first.stop(timeout=5) == 0
    assert time.monotonic() - stopping < 5
    assert "stopped" in first.log
    [(holder, expires_at)] = world.rows("SELECT holder, expires_at FROM scheduler_leases")
    assert f":{first.process.pid}:" in holder
    assert _aware(expires_at) <= datetime.now(UTC)  # released, not left to run out

    second = start_scheduler(world.url, lease_seconds=lease_seconds)
    wait_for(second.took_the_lease, what="the next scheduler to take the lease")
    [(holder, acquired_at)] = world.rows("SELECT holder, acquired_at FROM scheduler_leases")
    assert f":{second.process.pid}:" in holder
    assert _aware(acquired_at) < _aware(held_until) - timedelta(seconds=lease_seconds / 2)


def _aware(value) -> datetime:
    """SQLite hands back naive UTC text or datetimes through raw SQL; PostgreSQL aware datetimes."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- 5. the waitlist: a cancellation offered within the sweep interval, booked, fulfilled --------
# HTTP through the app in this process (the Clinic's caller, committing to the same database): the
# scheduler process is the real one.


def _join(world: Clinic, patient: str, start: datetime, **more) -> dict:
    return world.caller.create(
        "/v1/waitlist",
        {
            "patient_id": patient,
            "treatment_type_id": world.microneedling,
            "clinic_ids": [world.clinic],
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=15)).isoformat(),
            **more,
        },
    )


def _entry(world: Clinic, entry_id: str) -> dict:
    response = world.caller.get(f"/v1/waitlist/{entry_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_cancellation_is_offered_from_the_waitlist_within_the_sweep_interval_and_booked(
    fresh_clinic, start_scheduler
):
    world = fresh_clinic()
    starts_at = world.yesterday + timedelta(days=2, hours=10)  # tomorrow 10:00 UTC: past any notice
    other, _ = world.consulted_patient("Early Bird")
    waiting, _ = world.consulted_patient("Ada Waiting")
    booked = world.caller.create(
        "/v1/appointments",
        {
            "clinic_id": world.clinic,
            "practitioner_id": world.practitioners[0],
            "room_id": world.rooms[0],
            "treatment_type_id": world.microneedling,
            "patient_id": other,
            "starts_at": starts_at.isoformat(),
        },
    )
    entry = _join(world, waiting, starts_at, practitioner_id=world.practitioners[0])
    scheduler = start_scheduler(world.url)
    wait_for(scheduler.took_the_lease, what="the scheduler to take the lease")
    time.sleep(4 * float(TICK))  # several sweeps: the slot is full, nothing is offered
    assert _entry(world, entry["id"])["status"] == "waiting"

    cancelled = world.caller.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_unwell"})
    assert cancelled.status_code == 200, cancelled.get_json()
    freed = time.monotonic()
    offered = wait_for(
        lambda: (e := _entry(world, entry["id"]))["status"] == "offered" and e, timeout=20, what="the offer"
    )
    took = time.monotonic() - freed
    print(f"waitlist: offered {took:.2f}s after the cancellation (sweep every {TICK}s)")
    assert took < 10 * float(TICK), f"offered {took:.2f}s after the cancellation"
    hold = offered["offer"]["hold"]
    assert hold["source"] == "waitlist" and datetime.fromisoformat(hold["starts_at"]) == starts_at

    frontend = world.caller.create("/v1/api-keys", {"name": "Booking site", "scopes": ["read", "book"]})
    status, made = _in_process(world, frontend["secret"], "POST", "/v1/appointments", {"hold_id": hold["id"]})
    assert status == 201, made
    assert wait_for(lambda: _entry(world, entry["id"])["status"] == "fulfilled", what="fulfilled")
    assert _entry(world, entry["id"])["appointment_id"] == made["id"]
    time.sleep(4 * float(TICK))  # more sweeps change nothing
    assert scheduler.stop() == 0
    events = world.events_by_type()
    assert (events.get("waitlist.offered"), events.get("waitlist.fulfilled")) == (1, 1), events
    assert world.scalar("SELECT count(*) FROM holds WHERE source = 'waitlist'") == 1
    assert world.repeated_event_keys() == []


def _in_process(world: Clinic, token: str, method: str, path: str, body: dict) -> tuple[int, dict]:
    response = world.caller.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.get_json()


def test_a_scheduler_killed_mid_waitlist_sweep_leaves_no_double_or_half_offer(fresh_clinic, start_scheduler):
    world = fresh_clinic()
    starts_at = world.yesterday + timedelta(days=2, hours=6)
    entries = []
    for i in range(30):
        patient, _ = world.consulted_patient(f"Waiting {i}")
        entries.append(_join(world, patient, starts_at, clinic_ids=[])["id"])
    # Windows of a quarter hour, two practitioners and two rooms: the two earliest entries get the
    # slot; widen the rest so everyone has one of their own.
    with world.sessions.begin() as db:
        db.execute(
            sa.text("UPDATE waitlist_entries SET window_ends_at = :end"),
            {"end": starts_at + timedelta(days=5)},
        )
    offers = "SELECT count(*) FROM waitlist_offers"

    doomed = start_scheduler(world.url, lease_seconds=3)
    wait_for(lambda: 0 < world.scalar(offers) < 30, timeout=30, every=0.02, what="a waitlist sweep in progress")
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    assert world.scalar(offers) < 30, "the kill came too late to land mid-sweep"

    successor = start_scheduler(world.url, lease_seconds=3)
    wait_for(successor.took_the_lease, timeout=3 + 10, what="the successor to take the lapsed lease")
    wait_for(lambda: world.scalar(offers) == 30, timeout=60, what="the successor to finish the sweep")
    time.sleep(4 * float(TICK))
    assert successor.stop() == 0

    per_entry = world.rows(
        "SELECT e.id, e.status, count(o.id) FROM waitlist_entries e JOIN waitlist_offers o ON o.entry_id = e.id "
        "WHERE o.outcome IS NULL GROUP BY e.id, e.status"
    )
    assert sorted(per_entry) == sorted((entry, "offered", 1) for entry in entries)
    orphans = world.scalar(
        "SELECT count(*) FROM holds h WHERE h.source = 'waitlist' AND NOT EXISTS "
        "(SELECT 1 FROM waitlist_offers o WHERE o.hold_id = h.id)"
    )
    assert orphans == 0
    assert world.events_by_type().get("waitlist.offered") == 30
    assert world.repeated_event_keys() == []
    # No resource is claimed twice at once (the claims' guard, whatever the crash).
    overlapping = world.scalar(
        "SELECT count(*) FROM claims a JOIN claims b ON a.id < b.id AND a.resource = b.resource "
        "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
    )
    assert overlapping == 0
