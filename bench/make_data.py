"""Build the availability benchmark's database on PostgreSQL.

    .venv/bin/python -m bench.make_data --history 10k   # or 1m
    .venv/bin/python -m bench.make_data --history 1m --db needlebook_bench_1m

A chain of five clinics in four time zones. The measured clinic (Marylebone,
Europe/London) has 10 practitioners and 8 needling rooms, opens Mon-Fri
08:00-20:00 and Sat 09:00-17:00, and its next 14 days are about 60% booked
(the share of the practitioners' working hours covered by appointments, as their
calendars show them) with a mix of microneedling sessions, consultations and
reviews, plus a few live and lapsed holds. Behind that lies the history:
10,000 or 1,000,000 past appointments across the chain (completed, no-shows and
cancellations).

Every appointment is written with the claims the booking engine would write:
each one's busy ranges come from booking.domain.timing.occupancy(), placed by a random
scheduler (each practitioner's day walked on the quarter-hour grid) that never
lets two claims on one resource intersect (the exclusion constraint is rebuilt
after the load and would refuse it otherwise). Cancelled appointments have no
claims, as after POST .../cancel. The booked window has a random generator of
its own, so it is the same at 10k and at 1M history.

Bulk rows go in with COPY on two connections (appointments and claims side by
side); the secondary indexes and constraints of those two tables are dropped
first and rebuilt from their own definitions afterwards (which also validates
every foreign key and the no-overlap rule; the exclusion constraint's GiST index
is built with buffering=on, then the option is reset), then VACUUM ANALYZE.
Nothing goes through HTTP. The schema comes from the migrations
(`migrations.upgrade`).

It writes bench/out/<db>.json: the API key, ids, counts, the window's occupancy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from booking.domain.timing import Timing, instants, occupancy
from booking.domain.treatments import check_treatment_type, defaults_for
from booking.domain.vocabulary import DEFAULT_AREAS
from booking.domain.weekly import Shift, check_week, local_instant, parse_hhmm
from booking.services.tenancy import create_organization
from migrations import upgrade
from models import (
    Clinic,
    OpeningHours,
    Practitioner,
    Room,
    TimeOff,
    TreatmentType,
    WorkingHours,
    make_engine,
    make_sessionmaker,
    new_id,
)
from models.booking import pool_of
from tests.scaffold import create_database

OUT = Path(__file__).resolve().parent / "out"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

WINDOW_DAYS = 14  # the measured clinic's booked future, from tomorrow (today is booked too)
# At each quarter hour a free practitioner starts an appointment with this probability:
# it books about 60% of the practitioners' calendars (make_data reports the share).
BOOK_P = float(os.environ.get("BENCH_BOOK_P", "0.45"))
BOOK_SPREAD = 0.2  # standard deviation of that probability across practitioner-days
MIX = (("microneedling", 0.55), ("consultation", 0.20), ("review", 0.25))
CANCELLED_SHARE = 0.06  # of all appointments: cancelled (no claims; the slot went to someone else)
NO_SHOW_SHARE = 0.03  # of past appointments (claims kept, as POST .../no-show keeps them)
TEMPLATE_VARIANTS = 4  # history days are instances of a few random schedules per clinic and weekday
GRID = 15  # appointments start on the quarter hour, as availability offers them

OPENING = ["0-4 08:00-20:00", "5 09:00-17:00"]
# Weekly shifts; practitioner i of a clinic gets pattern i % 4.
SHIFT_PATTERNS = ["0-4 08:00-16:00", "0-4 12:00-20:00", "1-5 09:00-17:00", "0-3 10:00-18:30"]
CLINICS = [
    # The measured clinic first. Its 10th practitioner works here Mon-Wed and in Manchester Thu-Fri.
    dict(name="Marylebone", zone="Europe/London", practitioners=9, needling_rooms=8, other_rooms=0),
    dict(name="Manchester", zone="Europe/London", practitioners=7, needling_rooms=4, other_rooms=2),
    dict(name="Dublin", zone="Europe/Dublin", practitioners=8, needling_rooms=5, other_rooms=1),
    dict(
        name="Amsterdam",
        zone="Europe/Amsterdam",
        practitioners=8,
        needling_rooms=5,
        other_rooms=1,
        numbing_area=3,
        devices=4,
    ),
    dict(name="New York", zone="America/New_York", practitioners=8, needling_rooms=5, other_rooms=1),
]
SHARED = dict(name="Dr Shared Rotation", shifts=[(0, "0-2 09:00-17:00"), (1, "3-4 09:00-17:00")])
# A longer chain (--clinics N > 5, the chain-wide scenarios' 50 clinics) repeats the four other
# clinics' shapes in more cities, every third one with a numbing area and counted devices.
MORE_CITIES = [
    ("Leeds", "Europe/London"),
    ("Cork", "Europe/Dublin"),
    ("Rotterdam", "Europe/Amsterdam"),
    ("Boston", "America/New_York"),
    ("Berlin", "Europe/Berlin"),
    ("Madrid", "Europe/Madrid"),
    ("Chicago", "America/Chicago"),
    ("Toronto", "America/Toronto"),
    ("Lisbon", "Europe/Lisbon"),
    ("Vienna", "Europe/Vienna"),
]


def chain(clinics: int) -> list[dict]:
    """The first `clinics` clinics of the chain: the five above, then generated ones."""
    if clinics < 1:
        raise ValueError("a chain has at least one clinic")
    specs = [dict(spec) for spec in CLINICS[:clinics]]
    for n in range(len(specs), clinics):
        city, zone = MORE_CITIES[n % len(MORE_CITIES)]
        shape = dict(CLINICS[1 + n % (len(CLINICS) - 1)])
        shape.pop("numbing_area", None)
        shape.pop("devices", None)
        if n % 3 == 0:
            shape.update(numbing_area=3, devices=4)
        specs.append({**shape, "name": f"{city} {n + 1:02d}", "zone": zone})
    return specs


def parse_size(text: str) -> int:
    """'10k', '1m', '2500' -> a number of past appointments."""
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    if not number.isdigit() or int(number) * factor < 1:
        raise argparse.ArgumentTypeError(f"not a history size: {text!r} (e.g. 10k, 1m, 2500)")
    return int(number) * factor


REFERENCE = datetime(2000, 1, 3, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[make_data {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def week_spec(spec: str) -> list[tuple[int, int, int]]:
    """'0-4 09:00-17:00' -> [(weekday, start_minute, end_minute), ...]."""
    days, times = spec.split()
    first, _, last = days.partition("-")
    start, end = (parse_hhmm(t, allow_end_of_day=True) for t in times.split("-"))
    return [(d, start, end) for d in range(int(first), int(last or first) + 1)]


# ---------------------------------------------------------------------------- the chain


def phone(n: int) -> str:
    """Patient n's phone number, E.164 in Ofcom's London drama range, as the API would store it."""
    return f"+4420794{n % 100000:05d}"


@dataclass
class ClinicPlan:
    id: str
    name: str
    zone: ZoneInfo
    numbing: int
    devices: int | None
    needling_rooms: list[str]
    other_rooms: list[str]
    shifts: dict[int, list[tuple[str, int, int]]] = field(default_factory=dict)  # weekday -> (prac, start, end)
    # kind -> [(role, start offset, end offset, pool capacity)] in minutes from arrival, from occupancy()
    needs: dict[str, list[tuple[str, int, int, int | None]]] = field(default_factory=dict)
    span: dict[str, int] = field(default_factory=dict)  # kind -> minutes from arrival to ends_at


def build_chain(session, org_id: str, timings: dict[str, Timing], specs: list[dict]) -> list[ClinicPlan]:
    plans = []
    practitioners_by_clinic: list[list[Practitioner]] = []
    for spec in specs:
        clinic = Clinic(
            organization_id=org_id,
            name=spec["name"],
            timezone=spec["zone"],
            numbing_area_capacity=spec.get("numbing_area", 0),
            device_count=spec.get("devices"),
            opening_hours=[
                OpeningHours(weekday=d, start_minute=s, end_minute=e) for o in OPENING for d, s, e in week_spec(o)
            ],
        )
        session.add(clinic)
        session.flush()
        rooms = [
            Room(
                organization_id=org_id,
                clinic_id=clinic.id,
                name=f"{spec['name']} Treatment {n + 1}",
                capabilities=["needling"],
            )
            for n in range(spec["needling_rooms"])
        ]
        rooms += [
            Room(
                organization_id=org_id,
                clinic_id=clinic.id,
                name=f"{spec['name']} Consulting {n + 1}",
                capabilities=["consultation"],
            )
            for n in range(spec["other_rooms"])
        ]
        session.add_all(rooms)
        session.flush()
        plan = ClinicPlan(
            clinic.id,
            spec["name"],
            ZoneInfo(spec["zone"]),
            clinic.numbing_area_capacity,
            clinic.device_count,
            [r.id for r in rooms if "needling" in r.capabilities],
            [r.id for r in rooms if "needling" not in r.capabilities],
        )
        for kind, timing in timings.items():
            at = instants(timing, REFERENCE)
            plan.span[kind] = int((at.ends_at - REFERENCE).total_seconds()) // 60
            plan.needs[kind] = [
                (
                    need.resource.split(":")[0],
                    int((need.starts_at - REFERENCE).total_seconds()) // 60,
                    int((need.ends_at - REFERENCE).total_seconds()) // 60,
                    need.capacity,
                )
                for need in occupancy(
                    timing,
                    at,
                    clinic_id="c",
                    practitioner_id="p",
                    room_id="r",
                    patient_id="x",
                    numbing_seats=plan.numbing,
                    devices=plan.devices,
                )
            ]
        plans.append(plan)
        practitioners_by_clinic.append([])
    types = session.scalars(sa.select(TreatmentType).where(TreatmentType.organization_id == org_id)).all()

    def add_practitioner(name, clinic_indexes, hours):
        check_week([Shift(d, s, e, plans[c].id, specs[c]["zone"]) for c, d, s, e in hours])
        practitioner = Practitioner(
            organization_id=org_id,
            name=name,
            email=f"{name.lower().replace(' ', '.')}@example.com",
            clinics=[session.get(Clinic, plans[c].id) for c in clinic_indexes],
            treatment_types=list(types),
            working_hours=[
                WorkingHours(clinic_id=plans[c].id, weekday=d, start_minute=s, end_minute=e) for c, d, s, e in hours
            ],
        )
        session.add(practitioner)
        session.flush()
        for c, d, s, e in hours:
            plans[c].shifts.setdefault(d, []).append((practitioner.id, s, e))
        return practitioner

    for c, spec in enumerate(specs):
        for n in range(spec["practitioners"]):
            pattern = SHIFT_PATTERNS[n % len(SHIFT_PATTERNS)]
            add_practitioner(
                f"{spec['name']} Practitioner {n + 1}", [c], [(c, d, s, e) for d, s, e in week_spec(pattern)]
            )
    if len(specs) < 2:
        return plans
    add_practitioner(
        SHARED["name"],
        sorted({c for c, _ in SHARED["shifts"]}),
        [(c, d, s, e) for c, spec in SHARED["shifts"] for d, s, e in week_spec(spec)],
    )
    return plans


# ---------------------------------------------------------------------------- the scheduler


@dataclass
class Entry:
    """One appointment (or hold) of a clinic-day, in local minutes."""

    kind: str
    practitioner_id: str
    room_id: str
    minute: int
    units: tuple[tuple[str, int], ...] = ()  # (pool role, unit number)
    flag: str = "live"  # live | cancelled | hold_live | hold_expired


def _free(intervals, start, end) -> bool:
    return all(e <= start or s >= end for s, e in intervals)


def schedule_day(
    plan: ClinicPlan,
    weekday: int,
    rng: random.Random,
    *,
    off: frozenset[str] = frozenset(),
    holds: tuple[int, int] = (0, 0),
) -> list[Entry]:
    """A random day of a clinic, booked to about 60% of the practitioners' calendars.

    Uses the occupancy() offsets, so an entry placed here claims exactly what the
    booking engine would claim, and no two claims on one resource overlap.
    """
    shifts = [(p, s, e) for p, s, e in plan.shifts.get(weekday, []) if p not in off]
    if not shifts:
        return []
    practitioners = {p: [] for p, _, _ in shifts}
    rooms = {r: [] for r in plan.needling_rooms + plan.other_rooms}
    pools: dict[str, dict[int, list]] = {}
    entries: list[Entry] = []
    kinds, weights = zip(*MIX, strict=True)

    def place(p, s, e, kind, start) -> Entry | None:
        """Book `kind` with practitioner p at `start` if it fits in the shift [s, e) and nothing collides."""
        if start < s or start + plan.span[kind] > e:
            return None
        needs = plan.needs[kind]
        if not all(_free(practitioners[p], start + a, start + b) for role, a, b, _ in needs if role == "practitioner"):
            return None
        units = []
        for role, a, b, capacity in needs:
            if capacity is None:
                continue
            pool = pools.setdefault(role, {n: [] for n in range(1, capacity + 1)})
            unit = next((n for n, busy in pool.items() if _free(busy, start + a, start + b)), None)
            if unit is None:
                return None
            units.append((role, unit, a, b))
        (a, b) = next((a, b) for role, a, b, _ in needs if role == "room")
        # Sessions need a needling room; consultations and reviews prefer a consulting room.
        candidates = rng.sample(plan.needling_rooms, len(plan.needling_rooms))
        if kind != "microneedling":
            candidates = plan.other_rooms + candidates
        room = next((r for r in candidates if _free(rooms[r], start + a, start + b)), None)
        if room is None:
            return None
        rooms[room].append((start + a, start + b))
        for role, unit, ua, ub in units:
            pools[role][unit].append((start + ua, start + ub))
        for role, na, nb, _ in needs:
            if role == "practitioner":
                practitioners[p].append((start + na, start + nb))
        return Entry(kind, p, room, start, tuple((role, unit) for role, unit, _, _ in units))

    # Walk the day on the grid; at each quarter hour each working practitioner (in random
    # order) starts an appointment with probability about BOOK_P if it fits (the numbing gap
    # included): free time is left in gaps of every size, as a booked calendar looks.
    # How busy a practitioner is varies from day to day (some days full, some light).
    busy = {p: min(1.0, max(0.05, rng.gauss(BOOK_P, BOOK_SPREAD))) for p, _, _ in shifts}
    for minute in range(min(s for _, s, _ in shifts), max(e for _, _, e in shifts), GRID):
        for p, s, e in rng.sample(shifts, len(shifts)):
            if s <= minute < e and rng.random() < busy[p]:
                entry = place(p, s, e, rng.choices(kinds, weights)[0], minute)
                if entry is not None:
                    entries.append(entry)
    # Holds go where there is still room (their claims must not overlap either): every
    # practitioner and grid start in random order, a session if one fits, else a review.
    starts = [(p, s, e, m) for p, s, e in shifts for m in range(s, e, GRID)]
    rng.shuffle(starts)
    for flag in ["hold_live"] * holds[0] + ["hold_expired"] * holds[1]:
        for index, (p, s, e, m) in enumerate(starts):
            entry = place(p, s, e, "microneedling", m) or place(p, s, e, "review", m)
            if entry is not None:
                entry.flag = flag
                entries.append(entry)
                del starts[: index + 1]
                break
    live = [x for x in entries if x.flag == "live"]
    for _ in range(round(len(live) * CANCELLED_SHARE / (1 - CANCELLED_SHARE))):
        twin = rng.choice(live)
        entries.append(Entry(twin.kind, twin.practitioner_id, twin.room_id, twin.minute, twin.units, "cancelled"))
    entries.sort(key=lambda x: x.minute)
    return entries


# ---------------------------------------------------------------------------- rows


def ts(value: datetime) -> str:
    return value.isoformat()


NULL = "\\N"
APPOINTMENT_COLUMNS = (
    "id",
    "organization_id",
    "status",
    "cancel_reason",
    "cancelled_at",
    "checked_in_at",
    "completed_at",
    "clinic_id",
    "practitioner_id",
    "room_id",
    "patient_id",
    "treatment_type_id",
    "area",
    "starts_at",
    "procedure_starts_at",
    "ends_at",
    "created_at",
    "updated_at",
)
CLAIM_COLUMNS = (
    "organization_id",
    "resource",
    "pool",
    "starts_at",
    "ends_at",
    "appointment_id",
    "hold_id",
    "expires_at",
)
HOLD_COLUMNS = (
    "id",
    "organization_id",
    "source",
    "expires_at",
    "outcome",
    "clinic_id",
    "practitioner_id",
    "room_id",
    "patient_id",
    "treatment_type_id",
    "area",
    "starts_at",
    "procedure_starts_at",
    "ends_at",
    "created_at",
    "updated_at",
)
CANCEL_REASONS = ("patient_request", "patient_unwell", "clinic_request", "practitioner_unavailable")


class Writer:
    """Turns entries into COPY lines; claims come from occupancy() with the real ids."""

    def __init__(self, org_id, timings, type_ids, patient_ids, now, rng):
        self.org, self.timings, self.type_ids, self.patients = org_id, timings, type_ids, patient_ids
        self.now, self.rng = now, rng
        self.patient_cursor = 0
        self.appointments: list[str] = []
        self.claims: list[str] = []
        self.holds: list[str] = []
        self.counts = {"appointments": 0, "claims": 0, "holds": 0}

    def next_patient(self) -> str:
        # Round robin over many patients: nobody is seen twice on one day, so patient claims never collide.
        patient = self.patients[self.patient_cursor % len(self.patients)]
        self.patient_cursor += 1
        return patient

    def emit(self, plan: ClinicPlan, day: date, entry: Entry, *, past: bool) -> None:
        timing = self.timings[entry.kind]
        at = instants(timing, local_instant(day, entry.minute, plan.zone))
        patient = self.next_patient()
        area = self.rng.choice(DEFAULT_AREAS) if entry.kind == "microneedling" else None
        created = at.starts_at - timedelta(days=self.rng.randint(1, 30), minutes=self.rng.randint(0, 600))
        if entry.flag.startswith("hold"):
            hold_id = new_id("hold")
            if entry.flag == "hold_live":
                created, expires = self.now - timedelta(minutes=2), self.now + timedelta(hours=2)
            else:
                created = self.now - timedelta(hours=self.rng.randint(1, 48))
                expires = created + timedelta(minutes=10)
            self.holds.append(
                "\t".join(
                    (
                        hold_id,
                        self.org,
                        "frontend",
                        ts(expires),
                        NULL,
                        plan.id,
                        entry.practitioner_id,
                        entry.room_id,
                        patient,
                        self.type_ids[entry.kind],
                        area or NULL,
                        ts(at.starts_at),
                        ts(at.procedure_starts_at),
                        ts(at.ends_at),
                        ts(created),
                        ts(created),
                    )
                )
            )
            self.counts["holds"] += 1
            self._claims(plan, entry, timing, at, patient, NULL, hold_id, ts(expires))
            return
        appointment_id = new_id("appt")
        cancel_reason = cancelled_at = checked_in_at = completed_at = NULL
        updated = created
        if entry.flag == "cancelled":
            status, cancel_reason = "cancelled", self.rng.choice(CANCEL_REASONS)
            updated = min(at.starts_at - timedelta(hours=self.rng.randint(2, 96)), self.now)
            updated = max(updated, created)
            cancelled_at = ts(updated)
        elif at.starts_at < self.now:
            if past and self.rng.random() < NO_SHOW_SHARE / (1 - CANCELLED_SHARE):
                status, updated = "no_show", at.ends_at
            else:
                status, updated = "completed", min(at.ends_at, self.now)
                checked_in_at = ts(at.starts_at - timedelta(minutes=5))
                completed_at = ts(updated)
        else:
            status = "booked"
        self.appointments.append(
            "\t".join(
                (
                    appointment_id,
                    self.org,
                    status,
                    cancel_reason,
                    cancelled_at,
                    checked_in_at,
                    completed_at,
                    plan.id,
                    entry.practitioner_id,
                    entry.room_id,
                    patient,
                    self.type_ids[entry.kind],
                    area or NULL,
                    ts(at.starts_at),
                    ts(at.procedure_starts_at),
                    ts(at.ends_at),
                    ts(created),
                    ts(updated),
                )
            )
        )
        self.counts["appointments"] += 1
        if entry.flag != "cancelled":
            self._claims(plan, entry, timing, at, patient, appointment_id, NULL, NULL)

    def _claims(self, plan, entry, timing, at, patient, appointment_id, hold_id, expires) -> None:
        units = dict(entry.units)
        for need in occupancy(
            timing,
            at,
            clinic_id=plan.id,
            practitioner_id=entry.practitioner_id,
            room_id=entry.room_id,
            patient_id=patient,
            numbing_seats=plan.numbing,
            devices=plan.devices,
        ):
            resource = need.resource
            if need.capacity is not None:
                resource = f"{resource}#{units[resource.split(':')[0]]}"
            self.claims.append(
                "\t".join(
                    (
                        self.org,
                        resource,
                        pool_of(resource),
                        ts(need.starts_at),
                        ts(need.ends_at),
                        appointment_id,
                        hold_id,
                        expires,
                    )
                )
            )
            self.counts["claims"] += 1


class CopyStream:
    """COPY ... FROM STDIN on its own connection, fed in chunks from the generating thread."""

    def __init__(self, engine, table, columns):
        self.connection = engine.raw_connection()
        self.cursor = self.connection.driver_connection.cursor()
        self.copy_cm = self.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN")
        self.copy = self.copy_cm.__enter__()

    def write(self, lines: list[str]) -> None:
        if lines:
            self.copy.write("\n".join(lines) + "\n")
            lines.clear()

    def close(self) -> None:
        self.copy_cm.__exit__(None, None, None)
        self.connection.driver_connection.commit()
        self.connection.close()


# ---------------------------------------------------------------------------- the database


def recreate_database(admin_url: str, name: str) -> str:
    return create_database(admin_url, name).replace("postgresql+psycopg://", "postgresql://")


BULK_TABLES = ("appointments", "claims")


def drop_bulk_indexes(engine) -> list[str]:
    """Drop the bulk tables' constraints (FKs, exclusion) and secondary indexes; return the DDL to rebuild them."""
    rebuild = []
    with engine.begin() as conn:
        constraints = conn.execute(
            sa.text(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = ANY(CAST(:tables AS regclass[])) AND contype IN ('f', 'x') "
                "ORDER BY contype DESC, conname"
            ),
            {"tables": list(BULK_TABLES)},
        ).all()
        indexes = conn.execute(
            sa.text(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = ANY(CAST(:tables AS regclass[])) AND NOT i.indisprimary AND NOT EXISTS ("
                "SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) "
                "ORDER BY 1"
            ),
            {"tables": list(BULK_TABLES)},
        ).all()
        for table, name, _, _ in constraints:
            conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for name, _ in indexes:
            conn.execute(sa.text(f"DROP INDEX {name}"))
    # Claims' btrees first, then the exclusion constraint (the long one: a GiST index over
    # ~3 claims per appointment; ALTER TABLE locks claims meanwhile, so the other
    # connection builds the appointments' indexes and keys), then claims' foreign keys.
    # buffering=on makes the GiST build several times faster on an index larger than
    # shared_buffers; the option is reset afterwards, so the schema is the migrations' one.
    claims_indexes = [ddl for _, ddl in indexes if " ON public.claims " in ddl]
    other_indexes = [ddl for _, ddl in indexes if " ON public.claims " not in ddl]
    exclusions = [(table, name, ddl) for table, name, kind, ddl in constraints if kind == "x"]
    keys = [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}' for table, name, kind, ddl in constraints if kind == "f"
    ]
    rebuild += claims_indexes
    for table, name, ddl in exclusions:
        rebuild.append(
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl} WITH (buffering = on); '
            f'ALTER INDEX "{name}" RESET (buffering)'
        )
    rebuild += other_indexes
    rebuild += sorted(keys, key=lambda k: " claims " in k)  # the appointments' first: claims' wait for the GiST
    return rebuild


def rebuild_bulk_indexes(url: str, statements: list[str]) -> None:
    """Two connections build side by side (2 cores); each statement is timed."""
    pending = list(statements)
    lock = threading.Lock()
    errors = []

    def worker():
        engine = make_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SET maintenance_work_mem = '1GB'"))
            conn.execute(sa.text("SET max_parallel_maintenance_workers = 0"))
            while True:
                with lock:
                    if not pending or errors:
                        return
                    statement = pending.pop(0)
                started = time.monotonic()
                try:
                    conn.execute(sa.text(statement))
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(f"{statement}: {exc}")
                    return
                log(f"  {time.monotonic() - started:6.1f}s {statement[:110]}")
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("rebuilding indexes/constraints failed (overlapping claims?):\n" + "\n".join(errors))


def copy_patients(engine, org_id: str, count: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [new_id("pat") for _ in range(count)]
    stream = CopyStream(
        engine, "patients", ("id", "organization_id", "name", "email", "phone", "created_at", "updated_at")
    )
    lines = [
        f"{pid}\t{org_id}\tPatient {n:07d}\tpatient{n}@example.com\t{phone(n)}\t{ts(now)}\t{ts(now)}"
        for n, pid in enumerate(ids)
    ]
    stream.write(lines)
    stream.close()
    return ids


# ---------------------------------------------------------------------------- main


def generate(history: int, url: str, seed: int, clinics: int = len(CLINICS)) -> dict:
    timings_started = time.monotonic()
    seconds = {}
    rng = random.Random(seed)
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC).replace(microsecond=0)
    with make_sessionmaker(engine)() as session:
        organization, api_key = create_organization(session, "Bench Skin Clinics")
        org_id = organization.id
        types = {}
        for kind, name in (
            ("consultation", "Skin consultation"),
            ("microneedling", "Microneedling session"),
            ("review", "Follow-up review"),
        ):
            types[kind] = TreatmentType(
                organization_id=org_id, name=name, **check_treatment_type({**defaults_for(kind), "kind": kind})
            )
        session.add_all(types.values())
        session.flush()
        timings = {kind: Timing.of(t) for kind, t in types.items()}
        type_ids = {kind: t.id for kind, t in types.items()}
        plans = build_chain(session, org_id, timings, chain(clinics))
        measured = plans[0]
        today = now.astimezone(measured.zone).date()
        # One measured practitioner is away for two days of the window (time off, as a clinic has).
        away = measured.shifts[1][0][0]
        away_days = {today + timedelta(days=d) for d in (3, 4)}
        session.add(
            TimeOff(
                organization_id=org_id,
                practitioner_id=away,
                reason="Training course",
                starts_at=local_instant(min(away_days), 0, measured.zone),
                ends_at=local_instant(max(away_days) + timedelta(days=1), 0, measured.zone),
            )
        )
        session.commit()
    seconds["setup"] = time.monotonic() - timings_started

    started = time.monotonic()
    # Round robin over the patients: more of them than a day of the chain has appointments.
    patient_ids = copy_patients(engine, org_id, max(2_000, history // 20, 400 * clinics))
    seconds["patients"] = time.monotonic() - started

    started = time.monotonic()
    rebuild = drop_bulk_indexes(engine)
    appointments = CopyStream(engine, "appointments", APPOINTMENT_COLUMNS)
    claims = CopyStream(engine, "claims", CLAIM_COLUMNS)
    writer = Writer(org_id, timings, type_ids, patient_ids, now, rng)

    def flush(force=False):
        if force or len(writer.claims) > 50_000:
            appointments.write(writer.appointments)
            claims.write(writer.claims)

    # History: instances of a few template days per clinic and weekday, back from yesterday.
    templates = {
        (c, d): [schedule_day(plan, d, rng) for _ in range(TEMPLATE_VARIANTS)]
        for c, plan in enumerate(plans)
        for d in range(7)
    }
    plan_days, total, day = [], 0, today - timedelta(days=1)
    while total < history:
        for c in range(len(plans)):
            template = rng.choice(templates[(c, day.weekday())])
            if template:
                plan_days.append((day, c, template))
                total += len(template)
        day -= timedelta(days=1)
    skip = total - history  # the oldest day is cut short so that the count is exact
    first_history_day = plan_days[-1][0]
    for day, c, template in reversed(plan_days):
        for entry in template:
            if skip:
                skip -= 1
                continue
            writer.emit(plans[c], day, entry, past=True)
        flush()
    history_counts = dict(writer.counts)
    seconds["history_rows"] = time.monotonic() - started

    # The booked future: today and the next WINDOW_DAYS days, every clinic, freshly scheduled
    # with a random generator of its own, so the window is the same whatever the history size.
    rng = writer.rng = random.Random(seed + 1)
    window_stats = {
        "practitioner_open_minutes": 0,
        "practitioner_claimed_minutes": 0,
        "calendar_booked_minutes": 0,
        "room_open_minutes": 0,
        "room_claimed_minutes": 0,
        "appointments": 0,
    }
    for offset in range(WINDOW_DAYS + 1):
        for c, plan in enumerate(plans):
            day = today + timedelta(days=offset)
            off = frozenset({away}) if c == 0 and day in away_days else frozenset()
            holds = (1, 3) if c == 0 and offset in (1, 2, 5, 8) else (0, 0)
            entries = schedule_day(plan, day.weekday(), rng, off=off, holds=holds)
            for entry in entries:
                writer.emit(plan, day, entry, past=False)
            if c == 0 and offset >= 1:
                _window_stats(window_stats, plan, day, entries, off)
        flush()
    flush(force=True)
    appointments.close()
    claims.close()
    _copy_lines(engine, "holds", HOLD_COLUMNS, writer.holds)
    seconds["copy"] = time.monotonic() - started

    started = time.monotonic()
    log(f"rebuilding {len(rebuild)} indexes and constraints")
    rebuild_bulk_indexes(url, rebuild)
    seconds["indexes"] = time.monotonic() - started

    started = time.monotonic()
    with make_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text("VACUUM (ANALYZE)"))
    seconds["vacuum_analyze"] = time.monotonic() - started

    with engine.connect() as conn:
        counts = {
            table: conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            for table in ("clinics", "rooms", "practitioners", "patients", "appointments", "claims", "holds")
        }
        counts["past_appointments"] = conn.scalar(
            sa.text(
                "SELECT count(*) FROM appointments a JOIN clinics c ON c.id = a.clinic_id "
                "WHERE (a.starts_at AT TIME ZONE c.timezone)::date < :today"
            ),
            {"today": today},
        )
    engine.dispose()
    seconds["total"] = time.monotonic() - timings_started
    utilization = {
        "booked": round(window_stats["calendar_booked_minutes"] / window_stats["practitioner_open_minutes"], 3),
        "practitioner": round(
            window_stats["practitioner_claimed_minutes"] / window_stats["practitioner_open_minutes"], 3
        ),
        "room": round(window_stats["room_claimed_minutes"] / window_stats["room_open_minutes"], 3),
        "appointments": window_stats["appointments"],
    }
    return {
        "history": history,
        "url": url,
        "generated_at": now.isoformat(),
        "seed": seed,
        "organization_id": org_id,
        "api_key": api_key,
        "measured_clinic_id": measured.id,
        "clinic_ids": [p.id for p in plans],
        "clinics": len(plans),
        # The first clinic with a numbing area or counted devices (pool units 'numbing:<clinic>#n').
        "pooled_clinic_id": next((p.id for p in plans if p.numbing or p.devices), None),
        "treatment_type_ids": type_ids,
        "first_history_day": first_history_day.isoformat(),
        "today": today.isoformat(),
        "counts": counts,
        "history_rows": history_counts,
        "window_utilization": utilization,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _copy_lines(engine, table, columns, lines) -> None:
    stream = CopyStream(engine, table, columns)
    stream.write(lines)
    stream.close()


def _window_stats(stats, plan: ClinicPlan, day: date, entries: list[Entry], off) -> None:
    """How booked one measured day is (live appointments and live holds).

    booked: the practitioners' calendars, the share of their working minutes covered by
    appointments (arrival to departure, as a calendar shows them); practitioner: the
    share actually claimed (prep and procedure, not the numbing gap); room: the share of
    room-opening minutes claimed.
    """
    weekday = day.weekday()
    shifts = [(p, s, e) for p, s, e in plan.shifts.get(weekday, []) if p not in off]
    stats["practitioner_open_minutes"] += sum(e - s for _, s, e in shifts)
    opening = [(s, e) for o in OPENING for d, s, e in week_spec(o) if d == weekday]
    stats["room_open_minutes"] += sum(e - s for s, e in opening) * len(plan.needling_rooms + plan.other_rooms)
    covered: dict[str, set[int]] = {}
    for entry in entries:
        if entry.flag not in ("live", "hold_live"):
            continue
        stats["appointments"] += entry.flag == "live"
        covered.setdefault(entry.practitioner_id, set()).update(
            range(entry.minute, entry.minute + plan.span[entry.kind])
        )
        for role, a, b, _ in plan.needs[entry.kind]:
            if role == "practitioner":
                stats["practitioner_claimed_minutes"] += b - a
            elif role == "room":
                stats["room_claimed_minutes"] += b - a
    stats["calendar_booked_minutes"] += sum(len(minutes) for minutes in covered.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--history", type=str, required=True, help="past appointments across the chain: 10k, 1m, or any count (2k)"
    )
    parser.add_argument("--clinics", type=int, default=len(CLINICS), help="clinics in the chain (5; 50 generated)")
    parser.add_argument(
        "--db", help="database name (default needlebook_bench_<history>[_<clinics>c]); it is dropped and recreated"
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="a PostgreSQL URL to create the database from")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    history = parse_size(args.history)
    suffix = "" if args.clinics == len(CLINICS) else f"_{args.clinics}c"
    name = args.db or f"needlebook_bench_{args.history.lower()}{suffix}"
    log(f"creating {name}: {args.clinics} clinics, {history:,} past appointments")
    url = recreate_database(args.admin_url, name)
    meta = generate(history, url, args.seed, args.clinics)
    meta["db"] = name
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(
        f"done in {meta['seconds']['total']}s: {json.dumps(meta['counts'])}; "
        f"window utilization {json.dumps(meta['window_utilization'])}"
    )
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
