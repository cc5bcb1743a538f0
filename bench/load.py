"""Proof under load and faults (`make load`): real processes, a client pool, SIGKILLs, then SQL checks.

    .venv/bin/python -m bench.load                    # as `make load`: PostgreSQL, 2 nodes, 60 s
    .venv/bin/python -m bench.load --sqlite           # SQLite, one node, 30 s
    .venv/bin/python -m bench.load --duration 20 --clients 100 --keep

On a fresh database (created on the local PostgreSQL, or a file for --sqlite; dropped at the end
unless --keep) it starts two app nodes (gunicorn, 2 workers each, on two ports) and two
`python -m schedulers` processes with second-long intervals and a 5 s lease, seeds a chain of
three clinics in three time zones through the API, with a few hundred consulted patients, a
webhook subscription to a receiver run here on loopback (which verifies each signature), and
sessions booked in the past (the domain clock moved back) for the clients to complete.

Then `--clients` threads, each sending every request to a node picked at random, run a mix for
`--duration` seconds: availability searches (clinic-wide and per practitioner, with a patient),
holds then booking the hold (some holds are left to expire), direct bookings from a slot,
reschedules, cancels, completions of the past sessions, follow-up confirmations (the
scheduler proposes a follow-up hold for each completed session; the client books it), and course
plans held with `"hold": true`, then confirmed, released or left to expire, and waitlist entries
(the scheduler offers each a free slot it fits, as a hold; the client books it, declines it or
lets it lapse, and the sweep offers on). At a third
of the run one node is SIGKILLed (master and workers) and restarted a few seconds later; at half
the run the scheduler holding the lease is SIGKILLed and restarted, and the standby must take over.

After the clients stop and the schedulers have drained, direct SQL decides; any check off is a
non-zero exit:
  1. no two live claims on one resource intersect (and no live booking or hold lacks its claims,
     no room holds two live appointments at once);
  2. no patient has two live microneedling sessions (appointments, live holds, recorded past
     sessions) closer than the treatment type's minimum interval;
  3. every acknowledged write is there: each 201 appointment and hold, each reschedule's new
     appointment, each 200 cancel and completion in its new status, each confirmed follow-up;
  4. at most one follow-up per completed session, and one for every completed session; no
     outbox event recorded twice; no (subscription, event) delivery made twice; every webhook
     received carries a valid signature, and every delivery marked delivered was received;
  6. every course plan is whole: all its holds share its expiry and are live while it is held,
     booked (each appointment there) once it is confirmed, released or expired with it; and each
     acknowledged plan, confirm and release is there in that state;
  7. the waitlist: at most one live offer per entry; no slot offered to two entries at once (no two
     live waitlist holds with one practitioner and start, or with intersecting claims on one
     resource); every offer's hold is its entry's
     patient and treatment type, inside its window, clinics and time of day, expiring no later than
     the offer time after it was made nor than the notice before its slot (its claims and interval
     are checks 1 and 2 with every other hold); every fulfilled entry has its booked appointment,
     and every offer booked (201) fulfilled its entry with that appointment;
  5. no 5xx at all, and no failed connection outside the killed node's window (from the SIGKILL
     until the restarted node listens again): those failed connections are expected and excused.
It prints, and writes to bench/out/load.md (or --out), throughput, p50/p95 latency and the
status counts per operation, the faults and the checks, each with its figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from booking.domain.calendar_days import Dated, days_apart
from tests import scaffold
from tests.scaffold import app_env, scratch_database

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
CLINICS = (("London", "Europe/London"), ("New York", "America/New_York"), ("Tokyo", "Asia/Tokyo"))
HOURS = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
TICK = "1"  # seconds between two runs of each scheduler job
LEASE_SECONDS = 5
HOLD_TTL = 20  # seconds: frontend holds left alone expire during the run
OFFER_SECONDS = 6  # WAITLIST_OFFER_MINUTES as seconds: offers left alone lapse during the run
NOTICE = timedelta(
    minutes=120
)  # the deployment's default notice (AVAILABILITY_MIN_NOTICE_MINUTES): the chain sets none
REQUEST_TIMEOUT = 60
WINDOW_GRACE = 0.5  # seconds after the restarted node listens that a refused connection still counts as the kill's


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Options:
    backend: str = "postgresql"  # or "sqlite"
    admin_url: str = ""  # PostgreSQL: where to create the run's database
    duration: float = 60.0
    clients: int = 120
    patients: int = 300
    past_sessions: int = 60  # booked in the past, completed by the clients during the run
    nodes: int = 2
    kill_node: bool = True
    kill_scheduler: bool = True
    keep: bool = False
    seed: int = 1
    db_prefix: str = "needlebook_load"  # the run's database is <db_prefix>_<pid>_<random>
    out: Path = OUT / "load.md"
    logs: Path = OUT / "load-logs"


# ---------------------------------------------------------------------------- database


@contextmanager
def fresh_database(options: Options):
    """The url of an empty, migrated database; dropped (or the file removed) afterwards unless keep."""
    from migrations import upgrade

    if options.backend == "sqlite":
        options.logs.mkdir(parents=True, exist_ok=True)
        path = options.logs / "load.sqlite3"
        for leftover in path.parent.glob("load.sqlite3*"):
            leftover.unlink()
        url = f"sqlite:///{path}"
        upgrade(url)
        try:
            yield url
        finally:
            if not options.keep:
                for made in path.parent.glob("load.sqlite3*"):
                    made.unlink()
            else:
                log(f"kept {url}")
        return
    with scratch_database(options.admin_url, options.db_prefix, keep=options.keep) as url:
        yield url
        if options.keep:
            log(f"kept {url}")


# ---------------------------------------------------------------------------- processes


def _env(url: str, **more) -> dict:
    return app_env(
        url,
        RATE_LIMIT_ENABLED="0",
        HOLD_TTL=str(HOLD_TTL),
        WEBHOOKS_ALLOW_PRIVATE="1",
        **more,
    )


def _terminate_once(process: subprocess.Popen | None) -> None:
    """SIGTERM, once: a second one would not make the stop any more graceful."""
    if process is not None and process.poll() is None and not getattr(process, "terminating", False):
        process.terminating = True
        process.send_signal(signal.SIGTERM)


class Node:
    """One gunicorn (master + 2 workers) in its own process group, so SIGKILL takes them all,
    as when a machine dies. Restarted on the same port, as behind a load balancer."""

    def __init__(self, index: int, url: str, logs: Path):
        self.index, self.url, self.port = index, url, scaffold.free_port()
        self.log_path = logs / f"node-{index}.log"
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.process = scaffold.start(
                scaffold.gunicorn_command(self.port, timeout=REQUEST_TIMEOUT),
                env=_env(self.url),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.index} exited: see {self.log_path}")
            try:
                # A long timeout: once listening, the probe waits its turn behind the queued requests.
                conn = http.client.HTTPConnection(*self.base, timeout=REQUEST_TIMEOUT)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"node {self.index} did not come up")

    def wait_until_listening(self, timeout: float = 30) -> None:
        """The new master has bound the port: connections queue from now on instead of being refused."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(self.base, timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"node {self.index} is not listening")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> None:
        _terminate_once(self.process)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Scheduler:
    def __init__(self, index: int, url: str, logs: Path):
        self.index = index
        self.log_path = logs / f"scheduler-{index}.log"
        with open(self.log_path, "wb") as out:
            self.process = scaffold.start(
                scaffold.SCHEDULER_COMMAND,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_env(
                    url,
                    LOG_LEVEL="INFO",
                    FOLLOW_UP_INTERVAL_SECONDS=TICK,
                    HOLD_EXPIRY_INTERVAL_SECONDS=TICK,
                    REMINDER_INTERVAL_SECONDS=TICK,
                    WEBHOOK_INTERVAL_SECONDS=TICK,
                    WAITLIST_INTERVAL_SECONDS=TICK,
                    WAITLIST_OFFER_MINUTES=str(OFFER_SECONDS / 60),
                    WAITLIST_SHORTEST_OFFER_MINUTES=str(OFFER_SECONDS / 2 / 60),
                    SCHEDULER_LEASE_SECONDS=str(LEASE_SECONDS),
                    SCHEDULER_MISFIRE_GRACE_SECONDS="5",
                ),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def terminate(self) -> None:
        _terminate_once(self.process)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


# ---------------------------------------------------------------------------- webhook receiver


class Receiver:
    """Counts deliveries on loopback and verifies each with standardwebhooks; always answers 204."""

    def __init__(self):
        self.secret: str | None = None
        self.received: Counter = Counter()  # webhook-id -> times received
        self.types: Counter = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.receive(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    def receive(self, body: bytes, headers: dict) -> None:
        from standardwebhooks import Webhook

        try:
            payload = Webhook(self.secret).verify(body, headers)
            good = True
        except Exception:  # noqa: BLE001 - any verification failure is a bad signature
            payload, good = {}, False
        with self.lock:
            self.received[headers.get("webhook-id")] += 1
            self.types[payload.get("type")] += 1
            self.bad_signatures += not good

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- seed


@dataclass
class World:
    token: str
    organization_id: str
    clinics: list[dict]  # {id, zone, rooms, practitioners}
    types: dict[str, str]  # kind -> id
    patients: list[str]
    past_sessions: list[str]  # booked appointments whose start has passed
    courses: dict[str, str] = field(default_factory=dict)  # patient id -> their acne-scar course
    waitlist: list[str] = field(default_factory=list)  # entries seeded before the clients start


class _Api:
    """The app in this process (Flask's test client): seeding goes through the API."""

    def __init__(self, url: str):
        from api import create_app
        from booking.services.tenancy import create_organization

        self.app = create_app({"DATABASE_URL": url, "RATE_LIMIT_ENABLED": False, "WEBHOOKS_ALLOW_PRIVATE": True})
        self.client = self.app.test_client()
        with self.app.extensions["db_write_sessions"]() as session:
            organization, self.token = create_organization(session, "Load Test Skin Clinics")
            session.commit()
        self.organization_id = organization.id

    def call(self, method: str, path: str, payload=None, status: int = 201) -> dict:
        response = self.client.open(
            path, method=method, json=payload, headers={"Authorization": f"Bearer {self.token}"}
        )
        if response.status_code != status:
            raise RuntimeError(f"seeding {method} {path}: {response.status_code} {response.get_data(as_text=True)}")
        return response.get_json()

    def close(self) -> None:
        self.app.extensions["db_engine"].dispose()


def seed(url: str, receiver: Receiver) -> World:
    """The chain through the API: treatment types, clinics in three zones, rooms, practitioners with
    their hours, and the webhook subscription. Patients come after, through the domain (faster)."""
    api = _Api(url)
    types = {
        kind: api.call("POST", "/v1/treatment-types", {"name": kind.title(), "kind": kind})["id"]
        for kind in ("consultation", "microneedling", "review")
    }
    clinics = []
    for name, zone in CLINICS:
        clinic = api.call("POST", "/v1/clinics", {"name": name, "timezone": zone, "opening_hours": HOURS})["id"]
        rooms = [
            api.call("POST", f"/v1/clinics/{clinic}/rooms", {"name": f"Room {i}", "capabilities": ["needling"]})["id"]
            for i in (1, 2, 3)
        ]
        practitioners = []
        for i in (1, 2, 3):
            practitioner = api.call(
                "POST",
                "/v1/practitioners",
                {"name": f"Dr {name} {i}", "clinic_ids": [clinic], "treatment_type_ids": list(types.values())},
            )["id"]
            api.call(
                "PUT",
                f"/v1/practitioners/{practitioner}/working-hours",
                [{**day, "clinic_id": clinic} for day in HOURS],
                status=200,
            )
            practitioners.append(practitioner)
        clinics.append({"id": clinic, "zone": zone, "rooms": rooms, "practitioners": practitioners})
    subscription = api.call("POST", "/v1/webhooks", {"url": receiver.url, "event_types": _event_types()})
    receiver.secret = subscription["secret"]
    api.close()
    return World(api.token, api.organization_id, clinics, types, [], [])


def seed_patients(url: str, world: World, options: Options) -> None:
    """Patients, each with a consultation two weeks ago and an acne-scar course, in one transaction;
    then the sessions booked in the past."""
    from booking.domain.courses import course_defaults
    from booking.services.history import record_past_session
    from models import Course, Patient, make_engine, make_sessionmaker, writer

    engine = make_engine(url)
    two_weeks_ago = datetime.now(UTC) - timedelta(days=14)
    course = course_defaults(
        "microneedling", None, {"treatment_type_id": world.types["microneedling"], "indication": "acne_scars"}
    )
    with make_sessionmaker(writer(engine)).begin() as db:
        patients = [
            Patient(organization_id=world.organization_id, name=f"Patient {i}", email=f"patient{i}@example.com")
            for i in range(options.patients)
        ]
        db.add_all(patients)
        db.flush()
        courses = []
        for patient in patients:
            record_past_session(
                db,
                world.organization_id,
                patient.id,
                treatment_type_id=world.types["consultation"],
                performed_at=two_weeks_ago,
            )
            courses.append(Course(organization_id=world.organization_id, patient_id=patient.id, **course))
        db.add_all(courses)
        db.flush()
        world.patients = [p.id for p in patients]
        world.courses = {c.patient_id: c.id for c in courses}
    engine.dispose()
    world.past_sessions = _book_in_the_past(url, world, options.past_sessions)
    engine = make_engine(url)
    with make_sessionmaker(writer(engine)).begin() as db:
        # The last patients: the schedulers offer at once, and a first patient's offer could stand
        # in the way (rule 5) of the session booked in the past for them above.
        world.waitlist = _seed_waitlist(db, world, min(options.patients // 2, options.patients - options.past_sessions))
    engine.dispose()


def _seed_waitlist(db, world: World, number: int) -> list[str]:
    """Entries of the last patients, each for two days 1-60 days ahead at one clinic: the
    schedulers offer them from their first sweep on, under the clients and the SIGKILLs."""
    from booking.services import waitlist

    rng = random.Random(number)
    entries = []
    for i in range(number):
        start = datetime.now(UTC) + timedelta(days=rng.randint(1, 60))
        request = waitlist.EntryRequest(
            world.patients[-1 - i],
            world.types["microneedling"],
            start + timedelta(days=2),
            start,
            clinic_ids=(world.clinics[i % len(world.clinics)]["id"],),
        )
        entries.append(waitlist.join(db, world.organization_id, request).id)
    return entries


def _event_types() -> list[str]:
    from booking.services.events import EVENT_TYPES

    return list(EVENT_TYPES)


def _book_in_the_past(url: str, world: World, number: int) -> list[str]:
    """Microneedling sessions of the first patients, started 1-3 days ago at 08:00-16:00 local,
    booked the day before they started (the domain clock moved there): the clients complete them."""
    from booking.domain import clock
    from booking.services import appointments
    from booking.services.appointments import SlotRequest
    from models import make_engine, make_sessionmaker, writer

    engine = make_engine(url)
    sessions = make_sessionmaker(writer(engine))
    booked = []
    for i in range(number):
        clinic = world.clinics[i % len(world.clinics)]
        j = i // len(world.clinics)  # the clinic's j-th session: practitioner and room j % 3
        zone = ZoneInfo(clinic["zone"])
        day = datetime.now(zone).date() - timedelta(days=1 + j // 15)
        local = datetime(day.year, day.month, day.day, 8 + 2 * (j // 3 % 5), tzinfo=zone)
        starts_at = local.astimezone(UTC)
        request = SlotRequest(
            clinic["id"],
            clinic["practitioners"][j % 3],
            clinic["rooms"][j % 3],
            world.types["microneedling"],
            world.patients[i],
            starts_at,
        )
        with mock.patch.object(clock, "now", return_value=starts_at - timedelta(days=1)), sessions.begin() as db:
            booked.append(appointments.book(db, world.organization_id, request).id)
    engine.dispose()
    return booked


# ---------------------------------------------------------------------------- clients


@dataclass
class Record:
    node: int
    op: str
    status: int | None  # None: the connection failed
    started: float  # seconds since the run began
    ended: float
    error: str | None = None


class TimeUp(Exception):
    pass


class Run:
    """What the clients share: the nodes, what they know was booked, and every request made."""

    def __init__(self, world: World, nodes: list[Node], options: Options):
        self.world, self.nodes, self.options = world, nodes, options
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.booked: dict[str, dict] = {}  # appointment id -> its slot, while we believe it booked
        self.to_complete = list(world.past_sessions)
        self.completions_started = 0
        self.taken_follow_ups: set[str] = set()
        # Acknowledged writes, checked against the database afterwards.
        self.created_appointments: set[str] = set()
        self.created_holds: set[str] = set()
        self.cancelled: set[str] = set()
        self.completed: set[str] = set()
        self.rescheduled: dict[str, str] = {}  # old -> new
        self.confirmed: dict[str, str] = {}  # follow-up hold id -> appointment id
        self.plans: dict[str, str] = {}  # course plan id -> the status its last acknowledged change gave it
        self.waitlist_joined: set[str] = set(world.waitlist)
        self.taken_offers: set[str] = set()  # offer hold ids a client answers (or leaves to lapse)
        self.waitlist_booked: dict[str, str] = {}  # entry id -> the appointment its offer was booked as
        self.faults = Faults()
        self.rng = random.Random(options.seed)  # which node each request goes to
        self.started = time.monotonic()
        self.stop_at = self.started + options.duration

    def now(self) -> float:
        return time.monotonic() - self.started

    def request(self, op: str, method: str, path: str, body=None) -> tuple[int | None, dict | None]:
        if time.monotonic() >= self.stop_at:
            raise TimeUp  # no new request once the time is up, even halfway through an operation
        node = self.rng.randrange(len(self.nodes))
        started = self.now()
        conn = http.client.HTTPConnection(*self.nodes[node].base, timeout=REQUEST_TIMEOUT)
        headers = {"Authorization": f"Bearer {self.world.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as failure:
            self.records.append(Record(node, op, None, started, self.now(), f"{type(failure).__name__}: {failure}"))
            return None, None
        finally:
            conn.close()
        problem = None
        if status >= 500:  # what it was, for the report: the request, the answer (its request_id)
            problem = (
                f"{status} from node {node} at {started:.1f}s: {method} {path} "
                f"{json.dumps(body)[:300] if body else ''} -> {raw[:500]!r}"
            )
        self.records.append(Record(node, op, status, started, self.now(), problem))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None


class Client(threading.Thread):
    """One booking frontend or receptionist: a weighted mix of operations until the run stops."""

    MIX = (
        ("search", 22),
        ("search_practitioner", 10),
        ("hold_then_book", 18),
        ("book", 17),
        ("reschedule", 8),
        ("cancel", 6),
        ("complete", 7),
        ("confirm_follow_up", 12),
        ("plan_course", 4),
        ("join_waitlist", 3),
        ("answer_offer", 8),
    )

    def __init__(self, run: Run, index: int):
        super().__init__(name=f"client-{index}", daemon=True)
        self.run_, self.rng = run, random.Random(run.options.seed * 1000 + index)
        self.names = [name for name, _ in self.MIX]
        self.weights = [weight for _, weight in self.MIX]

    def run(self) -> None:
        try:
            while True:
                getattr(self, self.rng.choices(self.names, self.weights)[0])()
                time.sleep(self.rng.uniform(0, 0.2))
        except TimeUp:
            pass

    # --- building blocks
    def _window(self, days: int) -> tuple[datetime, datetime]:
        start = datetime.combine(date.today() + timedelta(days=self.rng.randint(1, 80)), datetime.min.time(), UTC)
        return start, start + timedelta(days=days)

    def _kind(self) -> str:
        return self.rng.choices(("microneedling", "consultation", "review"), (70, 15, 15))[0]

    def _search(self, op: str, *, practitioner: bool, patient: str | None, kind: str) -> list[dict]:
        world = self.run_.world
        clinic = self.rng.choice(world.clinics)
        start, end = self._window(3 if practitioner else 2)
        query = {
            "treatment_type_id": world.types[kind],
            "start": start.isoformat(),
            "end": end.isoformat(),
            "limit": 20,
        }
        if practitioner:
            query |= {"clinic_id": clinic["id"], "practitioner_id": self.rng.choice(clinic["practitioners"])}
        elif self.rng.random() < 0.8:  # else the whole chain
            query["clinic_id"] = clinic["id"]
        if patient:
            query["patient_id"] = patient
        status, body = self.run_.request(op, "GET", "/v1/availability?" + urllib.parse.urlencode(query))
        return body["data"] if status == 200 else []

    def _slot(self, practitioner: bool) -> tuple[str, dict] | None:
        patient, kind = self.rng.choice(self.run_.world.patients), self._kind()
        slots = self._search(
            "availability_practitioner" if practitioner else "availability",
            practitioner=practitioner,
            patient=patient,
            kind=kind,
        )
        if not slots:
            return None
        return patient, self.rng.choice(slots[:10])

    def _booked(self, body: dict) -> None:
        run = self.run_
        with run.lock:
            run.created_appointments.add(body["id"])
            run.booked[body["id"]] = body

    def _pick_booked(self) -> dict | None:
        run = self.run_
        with run.lock:
            if not run.booked:
                return None
            return run.booked.pop(self.rng.choice(list(run.booked)))

    # --- the mix
    def search(self) -> None:
        self._search(
            "availability", practitioner=False, patient=self.rng.choice(self.run_.world.patients), kind=self._kind()
        )

    def search_practitioner(self) -> None:
        self._search(
            "availability_practitioner",
            practitioner=True,
            patient=self.rng.choice(self.run_.world.patients),
            kind=self._kind(),
        )

    def book(self) -> None:
        found = self._slot(practitioner=False)
        if found:
            patient, slot = found
            status, body = self.run_.request("book", "POST", "/v1/appointments", {**slot, "patient_id": patient})
            if status == 201:
                self._booked(body)

    def hold_then_book(self) -> None:
        found = self._slot(practitioner=self.rng.random() < 0.3)
        if not found:
            return
        patient, slot = found
        status, hold = self.run_.request("hold", "POST", "/v1/holds", {**slot, "patient_id": patient})
        if status != 201:
            return
        with self.run_.lock:
            self.run_.created_holds.add(hold["id"])
        if self.rng.random() < 0.25:
            return  # the patient wandered off: the hold expires after HOLD_TTL, the scheduler releases it
        time.sleep(self.rng.uniform(0.2, 2.0))  # filling in the form
        status, body = self.run_.request("book_from_hold", "POST", "/v1/appointments", {"hold_id": hold["id"]})
        if status == 201:
            self._booked(body)

    def reschedule(self) -> None:
        old = self._pick_booked()
        if old is None:
            return self.search()
        starts_at = datetime.fromisoformat(old["starts_at"])
        start = max(starts_at - timedelta(days=3), datetime.now(UTC) + timedelta(days=1))
        query = {
            "treatment_type_id": old["treatment_type_id"],
            "clinic_id": old["clinic_id"],
            "practitioner_id": old["practitioner_id"],
            "start": start.isoformat(),
            "end": (start + timedelta(days=7)).isoformat(),
            "limit": 20,
        }
        status, body = self.run_.request(
            "availability_practitioner", "GET", "/v1/availability?" + urllib.parse.urlencode(query)
        )
        slots = body["data"] if status == 200 else []
        if not slots:
            with self.run_.lock:
                self.run_.booked[old["id"]] = old
            return
        slot = self.rng.choice(slots)
        status, body = self.run_.request(
            "reschedule",
            "PATCH",
            f"/v1/appointments/{old['id']}",
            {"starts_at": slot["starts_at"], "room_id": slot["room_id"]},
        )
        with self.run_.lock:
            if status == 200:
                self.run_.rescheduled[old["id"]] = body["id"]
                self.run_.created_appointments.add(body["id"])
                self.run_.booked[body["id"]] = body
            elif status is None or status < 500:
                self.run_.booked[old["id"]] = old  # still booked (or unknown: keep trying it)

    def cancel(self) -> None:
        old = self._pick_booked()
        if old is None:
            return self.search()
        status, _ = self.run_.request(
            "cancel",
            "POST",
            f"/v1/appointments/{old['id']}/cancel",
            {"reason": self.rng.choice(("patient_request", "patient_unwell"))},
        )
        if status == 200:
            with self.run_.lock:
                self.run_.cancelled.add(old["id"])

    def complete(self) -> None:
        """The past sessions, spread over the first 60% of the run so their follow-ups can be confirmed."""
        run = self.run_
        with run.lock:
            due = len(run.world.past_sessions) * min(1.0, run.now() / (0.6 * run.options.duration))
            appointment = run.to_complete.pop() if run.to_complete and run.completions_started < due else None
            run.completions_started += appointment is not None
        if appointment is None:
            return self.search()
        status, _ = run.request("complete", "POST", f"/v1/appointments/{appointment}/complete")
        with run.lock:
            if status == 200:
                run.completed.add(appointment)
            elif status is None:
                run.to_complete.append(appointment)  # the node died under us: try again elsewhere

    def confirm_follow_up(self) -> None:
        run = self.run_
        status, body = run.request("follow_ups", "GET", "/v1/follow-ups?status=proposed&limit=50")
        if status != 200:
            return
        with run.lock:
            open_ = [f for f in body["data"] if f["hold"] and f["hold"]["id"] not in run.taken_follow_ups]
            if not open_:
                return
            hold = self.rng.choice(open_)["hold"]["id"]
            run.taken_follow_ups.add(hold)
        status, booked = run.request("confirm_follow_up", "POST", "/v1/appointments", {"hold_id": hold})
        if status == 201:
            self._booked(booked)
            with run.lock:
                run.confirmed[hold] = booked["id"]
        elif status is None:
            with run.lock:
                run.taken_follow_ups.discard(hold)

    def plan_course(self) -> None:
        """A course's next two sessions held at one clinic, all or nothing; then confirmed (60%),
        released (20%) or left to expire (20%)."""
        run, rng = self.run_, self.rng
        patient = rng.choice(run.world.patients)
        body = {"sessions": 2, "hold": True, "clinic_ids": [rng.choice(run.world.clinics)["id"]]}
        status, plan = run.request("plan_hold", "POST", f"/v1/courses/{run.world.courses[patient]}/plan", body)
        if status != 200 or plan is None:
            return
        with run.lock:
            run.plans[plan["id"]] = "held"
        choice = rng.random()
        if choice < 0.2:
            return
        time.sleep(rng.uniform(0.2, 2.0))
        if choice < 0.4:
            status, _ = run.request("plan_release", "DELETE", f"/v1/course-plans/{plan['id']}")
            if status == 204:
                with run.lock:
                    run.plans[plan["id"]] = "released"
            return
        status, _ = run.request("plan_confirm", "POST", f"/v1/course-plans/{plan['id']}/confirm")
        if status == 200:
            with run.lock:
                run.plans[plan["id"]] = "confirmed"

    def join_waitlist(self) -> None:
        """A patient waits for a microneedling slot over two days, at one clinic or the whole chain,
        sometimes only in the afternoon; the scheduler offers one (there is room, so most get one)."""
        run, rng = self.run_, self.rng
        start, end = self._window(2)
        body = {
            "patient_id": rng.choice(run.world.patients),
            "treatment_type_id": run.world.types["microneedling"],
            "clinic_ids": [rng.choice(run.world.clinics)["id"]] if rng.random() < 0.8 else [],
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        if rng.random() < 0.3:
            body |= {"time_from": "12:00", "time_to": "18:00"}
        status, entry = run.request("waitlist_join", "POST", "/v1/waitlist", body)
        if status == 201 and entry is not None:
            with run.lock:
                run.waitlist_joined.add(entry["id"])

    def answer_offer(self) -> None:
        """An offered patient books the offer (60%), declines it (20%) or lets it lapse (20%)."""
        run, rng = self.run_, self.rng
        status, body = run.request("waitlist_offered", "GET", "/v1/waitlist?status=offered&limit=50")
        if status != 200 or body is None:
            return
        with run.lock:
            open_ = [e for e in body["data"] if e["offer"] and e["offer"]["hold"]["id"] not in run.taken_offers]
            if not open_:
                return
            entry = rng.choice(open_)
            hold = entry["offer"]["hold"]["id"]
            run.taken_offers.add(hold)
        choice = rng.random()
        if choice < 0.2:
            return
        if choice < 0.4:
            run.request("waitlist_decline", "DELETE", f"/v1/holds/{hold}")
            return
        # Not in run.booked: the clients never cancel or move it, so it stays the entry's booking.
        status, booked = run.request("waitlist_book", "POST", "/v1/appointments", {"hold_id": hold})
        with run.lock:
            if status == 201 and booked is not None:
                run.created_appointments.add(booked["id"])
                run.waitlist_booked[entry["id"]] = booked["id"]
            elif status is None:
                run.taken_offers.discard(hold)


# ---------------------------------------------------------------------------- faults


@dataclass
class Faults:
    # node, killed, listening again (+ WINDOW_GRACE): connections to it fail only in between
    node_windows: list[tuple[int, float, float]] = field(default_factory=list)
    node_answering: list[float] = field(default_factory=list)  # when its /healthz answered (its backlog served)
    scheduler_kills: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def lease_holder_pid(reader: sa.Engine) -> int | None:
    with reader.connect() as conn:
        holder = conn.scalar(sa.text("SELECT holder FROM scheduler_leases WHERE name = 'scheduler'"))
    return int(holder.rsplit(":", 2)[1]) if holder else None


def kill_a_node(run: Run) -> None:
    """A third in: SIGKILL the last node (master and workers), restart it a few seconds later."""
    faults = run.faults
    try:
        _sleep_until(run, run.options.duration / 3)
        node = run.nodes[-1]
        killed = run.now()
        node.kill()
        log(f"SIGKILLed node {node.index} (port {node.port}) at {killed:.1f}s")
        time.sleep(min(3.0, run.options.duration / 10))
        node.start()
        node.wait_until_listening()
        listening = run.now()
        faults.node_windows.append((node.index, killed, listening + WINDOW_GRACE))
        node.wait_until_up()
        faults.node_answering.append(run.now())
        log(f"node {node.index} restarted: listening at {listening:.1f}s, answering /healthz at {run.now():.1f}s")
    except Exception as failure:  # noqa: BLE001 - reported as a failed run, never a hang
        faults.errors.append(f"killing a node: {type(failure).__name__}: {failure}")


def kill_the_lease_holder(run: Run, schedulers: list[Scheduler], url: str, reader: sa.Engine) -> None:
    """Half way: SIGKILL the scheduler holding the lease; the standby must take it over within about
    the lease's time; then the killed one is restarted (as the new standby)."""
    faults = run.faults
    try:
        _sleep_until(run, run.options.duration / 2)
        pid = lease_holder_pid(reader)
        holder = next((s for s in schedulers if s.pid == pid and s.process.poll() is None), None)
        if holder is None:
            faults.errors.append(f"the lease holder (pid {pid}) is none of our running schedulers")
            return
        killed = run.now()
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait()
        log(f"SIGKILLed scheduler {holder.index} (pid {pid}, the lease holder) at {killed:.1f}s")
        standby = [s.pid for s in schedulers if s is not holder]
        taken_by, deadline = pid, time.monotonic() + 4 * LEASE_SECONDS
        while taken_by == pid and time.monotonic() < deadline:
            time.sleep(0.2)
            taken_by = lease_holder_pid(reader)
        after = run.now() - killed if taken_by != pid else None
        faults.scheduler_kills.append(
            {"killed_pid": pid, "at": killed, "taken_by": taken_by, "after": after, "by_standby": taken_by in standby}
        )
        log(f"lease taken by pid {taken_by} after {after if after is not None else float('nan'):.1f}s")
        schedulers[schedulers.index(holder)] = Scheduler(holder.index + len(schedulers), url, run.options.logs)
    except Exception as failure:  # noqa: BLE001 - reported as a failed run, never a hang
        faults.errors.append(f"killing the lease holder: {type(failure).__name__}: {failure}")


def _sleep_until(run: Run, moment: float) -> None:
    time.sleep(max(0.0, moment - run.now()))


# ---------------------------------------------------------------------------- checks


@dataclass
class Check:
    name: str
    figure: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.figure == 0


def _rows(conn, sql: str, **params) -> list:
    """Rows of raw SQL; datetime parameters bound as the models store them (naive UTC text on SQLite)."""
    from models.base import UTCDateTime

    statement = sa.text(sql).bindparams(
        *(sa.bindparam(name, type_=UTCDateTime()) for name, value in params.items() if isinstance(value, datetime))
    )
    return list(conn.execute(statement, params))


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_database(reader: sa.Engine, run: Run, receiver: Receiver) -> list[Check]:
    now = datetime.now(UTC)
    live = "(%s.expires_at IS NULL OR %s.expires_at > :now)"
    checks = []
    with reader.connect() as conn:
        overlaps = _rows(
            conn,
            f"""
            SELECT a.resource, a.id, b.id FROM claims a JOIN claims b ON a.resource = b.resource AND a.id < b.id
             AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
            WHERE {live % ("a", "a")} AND {live % ("b", "b")}""",
            now=now,
        )
        checks.append(Check("1. overlapping live claims (same resource)", len(overlaps), str(overlaps[:5])))
        unclaimed = _rows(
            conn,
            """
            SELECT a.id FROM appointments a WHERE a.status IN ('booked', 'checked_in')
             AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.appointment_id = a.id)
            UNION ALL
            SELECT h.id FROM holds h WHERE h.outcome IS NULL AND h.expires_at > :now
             AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.hold_id = h.id)""",
            now=now,
        )
        checks.append(Check("1. live bookings and holds without their claims", len(unclaimed), str(unclaimed[:5])))
        rooms = _rows(
            conn,
            """
            SELECT a.id, b.id FROM appointments a JOIN appointments b ON a.room_id = b.room_id AND a.id < b.id
             AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
            WHERE a.status IN ('booked', 'checked_in', 'completed')
              AND b.status IN ('booked', 'checked_in', 'completed')""",
        )
        checks.append(Check("1. rooms with two live appointments at once", len(rooms), str(rooms[:5])))

        sessions = _rows(
            conn,
            """
            SELECT a.patient_id, a.starts_at, t.min_interval_days, a.id, c.timezone FROM appointments a
              JOIN treatment_types t ON t.id = a.treatment_type_id JOIN clinics c ON c.id = a.clinic_id
             WHERE t.kind = 'microneedling' AND a.status IN ('booked', 'checked_in', 'completed')
            UNION ALL
            SELECT h.patient_id, h.starts_at, t.min_interval_days, h.id, c.timezone FROM holds h
              JOIN treatment_types t ON t.id = h.treatment_type_id JOIN clinics c ON c.id = h.clinic_id
             WHERE t.kind = 'microneedling' AND h.outcome IS NULL AND h.expires_at > :now
            UNION ALL
            SELECT p.patient_id, p.performed_at, t.min_interval_days, p.id, NULL FROM past_sessions p
              JOIN treatment_types t ON t.id = p.treatment_type_id WHERE t.kind = 'microneedling'""",
            now=now,
        )
        # Rule 5 counts calendar days between local dates, each in its own clinic's zone.
        by_patient = defaultdict(list)
        for patient, starts_at, minimum, ident, zone in sessions:
            by_patient[patient].append((Dated(_aware(starts_at), zone), minimum or 0, ident))
        close = []
        for patient, starts in by_patient.items():
            starts.sort(key=lambda session: session[0].at)
            for i, (a, minimum, first) in enumerate(starts):
                close += [
                    (patient, first, second, f"{days_apart(a, b)} days ({b.at - a.at})")
                    for b, _, second in starts[i + 1 :]
                    if days_apart(a, b) < minimum
                ]
        checks.append(
            Check(
                "2. a patient's microneedling sessions closer than the minimum interval",
                len(close),
                f"{len(sessions)} live sessions of {len(by_patient)} patients; {close[:3]}",
            )
        )

        appointments = dict(_rows(conn, "SELECT id, status FROM appointments"))
        holds = {row[0] for row in _rows(conn, "SELECT id FROM holds")}
        missing = sorted(run.created_appointments - appointments.keys())
        checks.append(
            Check(
                "3. appointments answered 201 (or 200 for a reschedule) but absent",
                len(missing),
                f"{len(run.created_appointments)} acknowledged; {missing[:5]}",
            )
        )
        missing_holds = sorted(run.created_holds - holds)
        checks.append(
            Check(
                "3. holds answered 201 but absent",
                len(missing_holds),
                f"{len(run.created_holds)} acknowledged; {missing_holds[:5]}",
            )
        )
        wrong = [a for a in run.cancelled if appointments.get(a) != "cancelled"]
        wrong += [a for a in run.completed if appointments.get(a) != "completed"]
        wrong += [a for a in run.rescheduled if appointments.get(a) != "cancelled"]
        checks.append(
            Check(
                "3. cancels, completions, reschedules answered 200 but not in that state",
                len(wrong),
                f"{len(run.cancelled)} cancelled, {len(run.completed)} completed, "
                f"{len(run.rescheduled)} rescheduled; {wrong[:5]}",
            )
        )
        follow_ups = {
            hold: (status, booked)
            for hold, status, booked in _rows(
                conn, "SELECT hold_id, status, booked_appointment_id FROM follow_ups WHERE hold_id IS NOT NULL"
            )
        }
        unconfirmed = [h for h, a in run.confirmed.items() if follow_ups.get(h) != ("booked", a)]
        checks.append(
            Check(
                "3. follow-ups confirmed (201) but not recorded as booked",
                len(unconfirmed),
                f"{len(run.confirmed)} confirmed; {unconfirmed[:5]}",
            )
        )

        doubled = _rows(
            conn, "SELECT appointment_id, count(*) FROM follow_ups GROUP BY appointment_id HAVING count(*) > 1"
        )
        checks.append(Check("4. completed sessions with more than one follow-up", len(doubled), str(doubled[:5])))
        unproposed = _rows(
            conn,
            """
            SELECT a.id FROM appointments a JOIN treatment_types t ON t.id = a.treatment_type_id
             WHERE a.status = 'completed' AND t.kind = 'microneedling'
               AND NOT EXISTS (SELECT 1 FROM follow_ups f WHERE f.appointment_id = a.id)""",
        )
        statuses = dict(_rows(conn, "SELECT status, count(*) FROM follow_ups GROUP BY status"))
        checks.append(
            Check(
                "4. completed sessions without a follow-up after the drain", len(unproposed), f"follow-ups: {statuses}"
            )
        )
        events = _rows(conn, "SELECT dedupe_key, count(*) FROM outbox_events GROUP BY dedupe_key HAVING count(*) > 1")
        by_type = dict(_rows(conn, "SELECT type, count(*) FROM outbox_events GROUP BY type ORDER BY type"))
        checks.append(
            Check(
                "4. outbox events recorded twice (dedupe_key)",
                len(events),
                f"{sum(by_type.values())} events: {by_type}",
            )
        )
        deliveries = _rows(
            conn,
            "SELECT subscription_id, event_id, count(*) FROM webhook_deliveries "
            "GROUP BY subscription_id, event_id HAVING count(*) > 1",
        )
        states = dict(_rows(conn, "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"))
        states["pending in flight (claimed by a killed scheduler, retried later)"] = _rows(
            conn, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > :now", now=now
        )[0][0]
        checks.append(
            Check("4. webhook deliveries made twice (subscription, event)", len(deliveries), f"deliveries: {states}")
        )
        delivered = {
            row[0] for row in _rows(conn, "SELECT event_id FROM webhook_deliveries WHERE status = 'delivered'")
        }
        checks += _check_plans(conn, run, appointments)
        checks += _check_waitlist(conn, run, appointments, now)
    redelivered = sum(1 for times in receiver.received.values() if times > 1)
    checks.append(
        Check(
            "4. webhooks received with a bad signature",
            receiver.bad_signatures,
            f"{sum(receiver.received.values())} received, {len(receiver.received)} distinct ids, "
            f"{redelivered} received more than once (at-least-once: allowed)",
        )
    )
    unseen = sorted(delivered - receiver.received.keys())
    checks.append(Check("4. deliveries marked delivered but never received", len(unseen), str(unseen[:5])))

    excused, failures = _classify(run)
    checks.append(
        Check(
            "5. 5xx answers (anywhere, the killed node's window included)",
            sum(1 for r in failures if r.status is not None),
            "; ".join(r.error for r in failures if r.status is not None)[:600],
        )
    )
    checks.append(
        Check(
            "5. failed connections outside the killed node's window",
            sum(1 for r in failures if r.status is None),
            f"{excused} inside it (excused); "
            + "; ".join(f"node {r.node} {r.op} at {r.started:.1f}s: {r.error}" for r in failures if r.status is None)[
                :300
            ],
        )
    )
    return checks


# What each status of a course plan leaves its holds as (models.booking.CoursePlan).
PLAN_HOLDS = {"held": {None}, "confirmed": {"booked"}, "released": {"released"}, "expired": {"expired"}}


def _check_plans(conn, run: Run, appointments: dict) -> list[Check]:
    plans = {
        plan: (status, _aware(expires_at))
        for plan, status, expires_at in _rows(conn, "SELECT id, status, expires_at FROM course_plans")
    }
    holds = defaultdict(list)
    for plan, outcome, expires_at, appointment in _rows(
        conn, "SELECT course_plan_id, outcome, expires_at, appointment_id FROM holds WHERE course_plan_id IS NOT NULL"
    ):
        holds[plan].append((outcome, _aware(expires_at), appointment))
    broken = []
    for plan, (status, expires_at) in plans.items():
        mine = holds.get(plan, [])
        outcomes = {outcome for outcome, _, _ in mine}
        if not mine or not outcomes <= PLAN_HOLDS[status] or any(e != expires_at for _, e, _ in mine):
            broken.append((plan, status, sorted(map(str, outcomes))))
        elif status == "confirmed" and any(appointments.get(a) is None for _, _, a in mine):
            broken.append((plan, status, "an appointment missing"))
    by_status = Counter(status for status, _ in plans.values())
    lost = [
        (plan, said, plans.get(plan, (None,))[0])
        for plan, said in run.plans.items()
        if plan not in plans
        or (said == "confirmed" and plans[plan][0] != "confirmed")
        or (said == "released" and plans[plan][0] not in ("released", "expired"))
    ]
    return [
        Check("6. course plans not whole (a hold off its plan's status or expiry)", len(broken), str(broken[:5])),
        Check(
            "6. course plans, confirms and releases acknowledged but not so",
            len(lost),
            f"{len(run.plans)} acknowledged; in the database {dict(by_status)}; {lost[:5]}",
        ),
    ]


def _check_waitlist(conn, run: Run, appointments: dict, now: datetime) -> list[Check]:
    live = "h.outcome IS NULL AND h.expires_at > :now"
    doubled = _rows(
        conn,
        f"""
        SELECT o.entry_id, count(*) FROM waitlist_offers o JOIN holds h ON h.id = o.hold_id
         WHERE o.outcome IS NULL OR ({live}) GROUP BY o.entry_id HAVING count(*) > 1""",
        now=now,
    )
    # A slot held for two entries at once: their holds share a practitioner and a start, or two of
    # their claims on one resource intersect (the practitioner is claimed only while applying the
    # numbing cream, so two needling sessions of one practitioner may overlap start to end).
    twice = _rows(
        conn,
        f"""
        SELECT h.id, b.id FROM holds h JOIN holds b ON h.id < b.id
         WHERE h.source = 'waitlist' AND b.source = 'waitlist' AND {live} AND b.outcome IS NULL
           AND b.expires_at > :now AND (
               (h.practitioner_id = b.practitioner_id AND h.starts_at = b.starts_at)
               OR EXISTS (SELECT 1 FROM claims c JOIN claims d ON c.resource = d.resource
                           WHERE c.hold_id = h.id AND d.hold_id = b.id
                             AND c.starts_at < d.ends_at AND d.starts_at < c.ends_at))""",
        now=now,
    )
    offers = _rows(
        conn,
        """
        SELECT o.id, o.created_at, h.source, h.patient_id, h.treatment_type_id, h.clinic_id, h.starts_at,
               h.expires_at, c.timezone, e.patient_id, e.treatment_type_id, e.clinic_ids, e.window_starts_at,
               e.window_ends_at, e.time_from, e.time_to
          FROM waitlist_offers o JOIN holds h ON h.id = o.hold_id JOIN waitlist_entries e ON e.id = o.entry_id
          JOIN clinics c ON c.id = h.clinic_id""",
    )
    off = []
    for offer, made, source, patient, kind, clinic, starts, expires, zone, *entry in offers:
        wanted_patient, wanted_kind, clinic_ids, window_start, window_end, time_from, time_to = entry
        starts, expires, made = _aware(starts), _aware(expires), _aware(made)
        clinic_ids = json.loads(clinic_ids) if isinstance(clinic_ids, str) else clinic_ids
        local = starts.astimezone(ZoneInfo(zone))
        minute = local.hour * 60 + local.minute
        broken = {
            "source": source != "waitlist",
            "patient or treatment type": (patient, kind) != (wanted_patient, wanted_kind),
            "outside the window": not _aware(window_start) <= starts < _aware(window_end),
            "another clinic": bool(clinic_ids) and clinic not in clinic_ids,
            "time of day": (time_from is not None and minute < time_from)
            or (time_to is not None and minute >= time_to),
            "expiry after the notice": expires > starts - NOTICE,
            "expiry after the offer time": expires > made + timedelta(seconds=OFFER_SECONDS + 1),
        }
        off += [(offer, what) for what, bad in broken.items() if bad]
    fulfilled = _rows(
        conn,
        """
        SELECT e.id, e.appointment_id, a.status, h.id FROM waitlist_entries e
          LEFT JOIN appointments a ON a.id = e.appointment_id
          LEFT JOIN waitlist_offers o ON o.entry_id = e.id AND o.outcome = 'booked'
          LEFT JOIN holds h ON h.id = o.hold_id AND h.appointment_id = e.appointment_id
         WHERE e.status = 'fulfilled'""",
    )
    unbooked = [row[0] for row in fulfilled if row[2] != "booked" or row[3] is None]
    entries = dict(_rows(conn, "SELECT id, status FROM waitlist_entries"))
    by_status = Counter(entries.values())
    by_outcome = dict(_rows(conn, "SELECT coalesce(outcome, 'unanswered'), count(*) FROM waitlist_offers GROUP BY 1"))
    booked_as = {row[0]: row[1] for row in fulfilled}
    lost = [e for e in run.waitlist_joined if e not in entries]
    lost += [e for e, appointment in run.waitlist_booked.items() if booked_as.get(e) != appointment]
    return [
        Check("7. waitlist entries with more than one live offer", len(doubled), str(doubled[:5])),
        Check(
            "7. slots offered to two entries at once (one practitioner and start, or intersecting claims)",
            len(twice),
            str(twice[:5]),
        ),
        Check(
            "7. offers whose hold is off its entry or the rules",
            len(off),
            f"{len(offers)} offers: {by_outcome}; {off[:5]}",
        ),
        Check(
            "7. fulfilled entries without their booked appointment",
            len(unbooked),
            f"entries: {dict(by_status)}; {unbooked[:5]}",
        ),
        Check(
            "7. entries joined (201) or offers booked (201) but not so",
            len(lost),
            f"{len(run.waitlist_joined)} joined, {len(run.waitlist_booked)} booked from an offer; {lost[:5]}",
        ),
    ]


def _classify(run: Run) -> tuple[int, list[Record]]:
    """(failed connections excused, failures that count). Only a failed connection to the killed node
    while it was down (under way at any moment between the SIGKILL and it listening again) is
    excused; a 5xx counts wherever and whenever it came from."""
    excused, failures = 0, []
    for record in run.records:
        if record.status is not None and record.status < 500:
            continue
        if record.status is None and any(
            node == record.node and record.started <= back and record.ended >= killed
            for node, killed, back in run.faults.node_windows
        ):
            excused += 1
        else:
            failures.append(record)
    return excused, failures


# ---------------------------------------------------------------------------- report


def _percentile(values: list[float], fraction: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(fraction * len(values)))] if values else float("nan")


def report(run: Run, checks: list[Check], options: Options, header: str) -> str:
    elapsed = options.duration
    by_op = defaultdict(list)
    for record in run.records:
        by_op[record.op].append(record)
    lines = [
        f"# Load test: {header}",
        "",
        "| operation | requests | req/s | p50 ms | p95 ms | 200 | 201 | 204 | 409 | 410 | 422 "
        "| other 4xx | 5xx | conn failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row(name: str, records: list[Record]) -> str:
        statuses = Counter(r.status for r in records)
        latencies = [1000 * (r.ended - r.started) for r in records if r.status is not None]
        other = sum(n for s, n in statuses.items() if s is not None and 400 <= s < 500 and s not in (409, 410, 422))
        fives = sum(n for s, n in statuses.items() if s is not None and s >= 500)
        return (
            f"| {name} | {len(records)} | {len(records) / elapsed:.1f} | {_percentile(latencies, 0.5):.0f} | "
            f"{_percentile(latencies, 0.95):.0f} | {statuses[200]} | {statuses[201]} | {statuses[204]} | "
            f"{statuses[409]} | {statuses[410]} | {statuses[422]} | {other} | {fives} | {statuses[None]} |"
        )

    for op in sorted(by_op):
        lines.append(row(op, by_op[op]))
    lines.append(row("**all**", run.records))
    lines += ["", "Faults:"]
    for (node, killed, back), answering in zip(run.faults.node_windows, run.faults.node_answering, strict=False):
        lines.append(
            f"- node {node} SIGKILLed (master and workers) at {killed:.1f} s, restarted and listening at "
            f"{back - WINDOW_GRACE:.1f} s (the window ends {WINDOW_GRACE} s later), answering /healthz "
            f"at {answering:.1f} s once its workers booted and served the requests queued before it"
        )
    for kill in run.faults.scheduler_kills:
        after = f"{kill['after']:.1f} s later" if kill["after"] is not None else "NOT taken over"
        lines.append(
            f"- the lease-holding scheduler (pid {kill['killed_pid']}) SIGKILLed at {kill['at']:.1f} s; "
            f"lease taken by pid {kill['taken_by']} {after}"
            f"{' (the standby)' if kill['by_standby'] else ''}"
        )
    lines += [f"- fault injection: {error}" for error in run.faults.errors]
    if not (run.faults.node_windows or run.faults.scheduler_kills or run.faults.errors):
        lines.append("- none")
    lines += ["", "| check | figure | result | detail |", "|---|---:|---|---|"]
    for check in checks:
        detail = check.detail.replace("|", "/").replace("\n", " ")[:400]
        lines.append(f"| {check.name} | {check.figure} | {'ok' if check.ok else '**FAIL**'} | {detail} |")
    passed = all(c.ok for c in checks)
    lines += ["", f"Result: {'PASS' if passed else 'FAIL'}"]
    problems = [r.error for r in run.records if r.status is not None and r.status >= 500]
    if problems:
        lines += ["", "5xx answers (first 10; the nodes' logs have each request_id's traceback):"]
        lines += [f"- {p}" for p in problems[:10]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the run


@dataclass
class Result:
    passed: bool
    checks: list[Check]
    text: str


DRAIN = {
    "completed sessions without a follow-up": """
        SELECT count(*) FROM appointments a JOIN treatment_types t ON t.id = a.treatment_type_id
         WHERE a.status = 'completed' AND t.kind = 'microneedling'
           AND NOT EXISTS (SELECT 1 FROM follow_ups f WHERE f.appointment_id = a.id)""",
    "events not fanned out": "SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL AND created_at <= :cutoff",
    # Due, never tried. Not those a killed scheduler had claimed (in flight, next attempt pushed
    # ahead by booking.integrations.webhooks.IN_FLIGHT): they are retried then, a redelivery the receiver drops.
    "deliveries due and never tried": """
        SELECT count(*) FROM webhook_deliveries d JOIN outbox_events e ON e.id = d.event_id
         WHERE d.status = 'pending' AND d.attempts = 0 AND e.created_at <= :cutoff
           AND d.next_attempt_at <= :now""",
}


def _wait_for_drain(reader: sa.Engine, limit: float) -> tuple[float, dict]:
    """Until every completed session has its follow-up and every event recorded before now has been
    fanned out and its delivery tried (holds still expiring make new events: those may stay pending).
    Returns how long it took and what was still outstanding."""
    started = time.monotonic()
    cutoff = datetime.now(UTC)
    time.sleep(1)
    while True:
        with reader.connect() as conn:
            times = {"cutoff": cutoff, "now": datetime.now(UTC)}
            outstanding = {
                what: _rows(conn, sql, **{k: v for k, v in times.items() if f":{k}" in sql})[0][0]
                for what, sql in DRAIN.items()
            }
        if not any(outstanding.values()) or time.monotonic() - started > limit:
            return time.monotonic() - started, {k: v for k, v in outstanding.items() if v}
        time.sleep(0.5)


def run(options: Options) -> Result:
    from models import make_engine

    options.logs.mkdir(parents=True, exist_ok=True)
    for old in options.logs.glob("*.log"):
        old.unlink()
    nodes: list[Node] = []
    schedulers: list[Scheduler] = []
    load = None
    began = time.monotonic()
    with fresh_database(options) as url, Receiver() as receiver:
        log(f"database {sa.make_url(url).database} created and migrated in {time.monotonic() - began:.1f}s")
        reader = make_engine(url)
        try:
            started = time.monotonic()
            # The processes boot while the chain is written: they need nothing of it to start.
            nodes = [Node(i, url, options.logs) for i in range(options.nodes)]
            for node in nodes:
                node.start()
            schedulers = [Scheduler(i, url, options.logs) for i in range(2)]
            world = seed(url, receiver)
            seed_patients(url, world, options)
            log(
                f"seeded {len(world.clinics)} clinics, {len(world.patients)} patients, "
                f"{len(world.past_sessions)} past sessions in {time.monotonic() - started:.1f}s"
            )
            for node in nodes:
                node.wait_until_up()
            log(
                f"{len(nodes)} node(s) up on ports {[n.port for n in nodes]}, {len(schedulers)} schedulers; "
                f"{options.clients} clients for {options.duration:.0f}s"
            )

            load = Run(world, nodes, options)
            clients = [Client(load, i) for i in range(options.clients)]
            faults = []
            if options.kill_node:
                faults.append(threading.Thread(target=kill_a_node, args=(load,), daemon=True))
            if options.kill_scheduler:
                faults.append(
                    threading.Thread(target=kill_the_lease_holder, args=(load, schedulers, url, reader), daemon=True)
                )
            for thread in clients + faults:
                thread.start()
            for thread in clients + faults:
                thread.join()
            log(f"{len(load.records)} requests in {load.now():.1f}s; draining the schedulers")
            drained, outstanding = _wait_for_drain(reader, limit=20)
            log(f"drained in {drained:.1f}s" + (f"; still outstanding: {outstanding}" if outstanding else ""))
        finally:
            for process in schedulers + nodes:
                process.terminate()  # all at once; each is waited for below
            codes = [s.stop() for s in schedulers]
            for node in nodes:
                node.stop()
        log("processes stopped; checking")
        checks = check_database(reader, load, receiver)
        reader.dispose()
    checks += [Check("fault injection errors", 1, error) for error in load.faults.errors]
    for kill in load.faults.scheduler_kills:
        checks.append(
            Check(
                "the standby took the lease over",
                0 if kill["by_standby"] else 1,
                f"{kill['after']:.1f} s after the kill" if kill["after"] is not None else "never",
            )
        )
    checks.append(Check("schedulers that did not exit cleanly on SIGTERM", sum(c != 0 for c in codes), str(codes)))
    header = (
        f"{options.backend}, {options.nodes} node(s) x 2 workers, 2 schedulers, {options.clients} clients, "
        f"{options.duration:.0f} s, {len(world.patients)} patients, {len(world.past_sessions)} past sessions "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    )
    text = report(load, checks, options, header)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text)
    return Result(all(c.ok for c in checks), checks, text)


def parse(argv=None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="SQLite, one node (default duration 30 s)")
    parser.add_argument("--duration", type=float, help="seconds of load (default 60; 30 with --sqlite)")
    parser.add_argument("--clients", type=int, default=120)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--past-sessions", type=int, default=60)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
        help="a PostgreSQL server to create the run's database on",
    )
    parser.add_argument("--no-faults", action="store_true", help="no SIGKILLs")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="the summary (default bench/out/load.md, load-sqlite.md)")
    args = parser.parse_args(argv)
    sqlite = args.sqlite
    return Options(
        backend="sqlite" if sqlite else "postgresql",
        admin_url=args.postgres_url,
        duration=args.duration or (30.0 if sqlite else 60.0),
        clients=args.clients,
        patients=args.patients,
        past_sessions=args.past_sessions,
        nodes=1 if sqlite else 2,
        kill_node=not (sqlite or args.no_faults),
        kill_scheduler=not args.no_faults,
        keep=args.keep,
        seed=args.seed,
        out=args.out or OUT / ("load-sqlite.md" if sqlite else "load.md"),
        logs=OUT / ("load-logs-sqlite" if sqlite else "load-logs"),
    )


def main(argv=None) -> int:
    options = parse(argv)
    result = run(options)
    print(result.text)
    log(f"{'PASS' if result.passed else 'FAIL'}; written to {options.out}; process logs in {options.logs}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
