"""The availability fast path (set-up cached under setup_version, one statement per clinic for the
window) answers exactly what the reference loader answers, and a change committed by one worker
shows in the next search of every other at once.

Random organizations (two or three clinics in zones with different DST rules, rooms with and
without capabilities, practitioners qualified or not, shifts, opening hours, closures, time off,
claims of practitioners, rooms, patients and pooled units), random windows (DST weeks included):
availability_search.search with today's _build and with the reference's (tests/services/
availability_reference.py, the loader before the cache) must give the same slots, also after a
random change to the set-up between two searches (the cache's invalidation).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.services import availability_cache, availability_search
from booking.services.availability_search import Query, Settings, search
from models import (
    Claim,
    Clinic,
    Closure,
    ExternalBusy,
    OpeningHours,
    Organization,
    Practitioner,
    Room,
    TimeOff,
    TreatmentType,
    WorkingHours,
    make_engine,
    make_sessionmaker,
)
from models.calendars import ExternalCalendar
from models.staff import practitioner_clinics, practitioner_treatment_types

from ..scaffold import fresh_database
from . import availability_reference

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
# Mondays: an ordinary winter week, the weeks of the spring and autumn changes in Europe and the US.
WEEKS = [date(2027, 1, 4), date(2027, 3, 8), date(2027, 3, 22), date(2027, 10, 25), date(2027, 11, 1)]
SETTINGS = Settings(min_notice=timedelta(0), horizon=timedelta(days=400))

# [(clinic zone, numbing seats, devices, rooms, practitioners, opening, closures)], claims, time off
minutes = st.integers(0, 95).map(lambda q: q * 15)
shift = st.tuples(st.integers(0, 6), minutes, st.integers(2, 40).map(lambda q: q * 15)).map(
    lambda t: (t[0], t[1], min(24 * 60, t[1] + t[2]))
)
clinic = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "seats": st.sampled_from([0, 0, 1, 2]),
        "devices": st.sampled_from([None, None, 1, 2]),
        "rooms": st.lists(st.sampled_from([["needling"], [], ["needling", "laser"]]), min_size=1, max_size=3),
        "practitioners": st.lists(
            st.fixed_dictionaries({"qualified": st.booleans(), "shifts": st.lists(shift, max_size=4)}),
            min_size=1,
            max_size=3,
        ),
        "opening": st.lists(shift, min_size=1, max_size=8),
        "closures": st.lists(st.integers(-3, 12), max_size=2),
    }
)
world = st.fixed_dictionaries(
    {
        "clinics": st.lists(clinic, min_size=2, max_size=3),
        "kind": st.sampled_from(["microneedling", "consultation"]),
        "week": st.sampled_from(WEEKS),
        "claims": st.lists(
            st.tuples(st.integers(0, 10_000), st.integers(-48, 9 * 24 * 4), st.integers(1, 28)), max_size=40
        ),
        "time_off": st.lists(
            st.tuples(st.integers(0, 1000), st.integers(-48, 9 * 24 * 4), st.integers(1, 60)), max_size=4
        ),
        "window": st.tuples(st.integers(0, 6 * 24), st.integers(4, 7 * 24)),  # start hour in the week, hours long
        "filters": st.tuples(st.booleans(), st.booleans(), st.sampled_from([1, 3, 50, 500])),
        "change": st.sampled_from(["hours", "room", "archive", "closure", "qualification", "shift", "nothing"]),
    }
)


def build(db: Session, data: dict) -> dict:
    """The organization's rows, flushed; what the searches need to name."""
    org = Organization(name="Fast path")
    db.add(org)
    db.flush()
    treatment = TreatmentType(
        organization_id=org.id,
        name="T",
        kind=data["kind"],
        numbing_minutes=30 if data["kind"] == "microneedling" else 0,
        prep_minutes=5 if data["kind"] == "microneedling" else 0,
        procedure_minutes=45,
        aftercare_minutes=10,
        turnover_minutes=15,
        allowed_areas=[],
        required_capability="needling" if data["kind"] == "microneedling" else None,
    )
    db.add(treatment)
    db.flush()
    week = data["week"]
    resources, practitioners, clinics = [], [], []
    for c in data["clinics"]:
        row = Clinic(
            organization_id=org.id,
            name="C",
            timezone=c["zone"],
            numbing_area_capacity=c["seats"],
            device_count=c["devices"],
        )
        db.add(row)
        db.flush()
        clinics.append(row.id)
        for caps in c["rooms"]:
            room = Room(organization_id=org.id, clinic_id=row.id, name="R", capabilities=caps)
            db.add(room)
            db.flush()
            resources.append(f"room:{room.id}")
        for weekday, start, end in c["opening"]:
            db.add(OpeningHours(clinic_id=row.id, weekday=weekday, start_minute=start, end_minute=end))
        for offset in c["closures"]:
            day = week + timedelta(days=offset)
            db.add(Closure(clinic_id=row.id, start_date=day, end_date=day))
        for p in c["practitioners"]:
            person = Practitioner(organization_id=org.id, name="P")
            db.add(person)
            db.flush()
            practitioners.append(person.id)
            resources.append(f"practitioner:{person.id}")
            db.execute(sa.insert(practitioner_clinics).values(practitioner_id=person.id, clinic_id=row.id))
            if p["qualified"]:
                db.execute(
                    sa.insert(practitioner_treatment_types).values(
                        practitioner_id=person.id, treatment_type_id=treatment.id
                    )
                )
            for weekday, start, end in p["shifts"]:
                db.add(
                    WorkingHours(
                        practitioner_id=person.id, clinic_id=row.id, weekday=weekday, start_minute=start, end_minute=end
                    )
                )
        for pool, size in (("numbing", c["seats"]), ("device", c["devices"] or 0)):
            resources += [f"{pool}:{row.id}#{n}" for n in range(1, size + 1)]
    resources.append("patient:pat_nobody")
    origin = datetime.combine(week, datetime.min.time(), UTC)
    taken: dict[str, list[tuple[datetime, datetime]]] = {}
    for pick, quarter, length in data["claims"]:
        resource = resources[pick % len(resources)]
        start = origin + timedelta(minutes=15 * quarter)
        end = start + timedelta(minutes=15 * length)
        if any(s < end and start < e for s, e in taken.get(resource, [])):
            continue  # one resource is never claimed twice at once (the exclusion constraint)
        taken.setdefault(resource, []).append((start, end))
        expires = None if pick % 3 else origin + timedelta(days=pick % 5)  # some holds, some lapsed
        db.add(Claim(organization_id=org.id, resource=resource, starts_at=start, ends_at=end, expires_at=expires))
    calendar = None
    for pick, quarter, length in data["time_off"]:
        who = practitioners[pick % len(practitioners)]
        start = origin + timedelta(minutes=15 * quarter)
        end = start + timedelta(minutes=15 * length)
        if pick % 2:
            db.add(TimeOff(organization_id=org.id, practitioner_id=who, starts_at=start, ends_at=end))
        else:
            if calendar is None:
                calendar = ExternalCalendar(organization_id=org.id, practitioner_id=who, name="X")
                db.add(calendar)
                db.flush()
            db.add(ExternalBusy(calendar_id=calendar.id, practitioner_id=who, starts_at=start, ends_at=end))
    db.flush()
    return {"org": org.id, "treatment": treatment.id, "clinics": clinics, "practitioners": practitioners,
            "origin": origin}  # fmt: skip


def change(db: Session, built: dict, what: str) -> None:
    """One edit of the set-up, as an admin would make it (through the ORM, flushed)."""
    first_clinic, first_practitioner = built["clinics"][0], built["practitioners"][0]
    if what == "hours":
        db.execute(sa.delete(OpeningHours).where(OpeningHours.clinic_id == first_clinic))
        db.add(
            OpeningHours(clinic_id=first_clinic, weekday=built["origin"].weekday(), start_minute=480, end_minute=660)
        )
    elif what == "room":
        db.add(Room(organization_id=built["org"], clinic_id=first_clinic, name="New", capabilities=["needling"]))
    elif what == "archive":
        db.get(Practitioner, first_practitioner).archived_at = built["origin"]
    elif what == "closure":
        day = built["origin"].date()
        db.add(Closure(clinic_id=first_clinic, start_date=day, end_date=day + timedelta(days=3)))
    elif what == "qualification":
        db.execute(
            sa.delete(practitioner_treatment_types).where(
                practitioner_treatment_types.c.practitioner_id == first_practitioner
            )
        )
    elif what == "shift":
        for weekday in range(7):
            db.add(
                WorkingHours(
                    practitioner_id=first_practitioner,
                    clinic_id=first_clinic,
                    weekday=weekday,
                    start_minute=0,
                    end_minute=1440,
                )
            )
    db.flush()


def answers(db: Session, built: dict, data: dict, monkeypatch) -> tuple[list, list]:
    start_hour, hours = data["window"]
    by_practitioner, by_clinic, limit = data["filters"]
    start = built["origin"] + timedelta(hours=start_hour)
    query = Query(
        treatment_type_id=built["treatment"],
        start=start,
        end=start + timedelta(hours=hours),
        clinic_id=built["clinics"][0] if by_clinic else None,
        practitioner_id=built["practitioners"][0] if by_practitioner else None,
        limit=limit,
    )
    fast = _slots(db, built, query)
    with monkeypatch.context() as patched:
        patched.setattr(availability_search, "_build", availability_reference._build)
        reference = _slots(db, built, query)
    return fast, reference


def _slots(db: Session, built: dict, query: Query) -> list | str:
    try:
        return search(db, built["org"], query, SETTINGS)[0]
    except InvalidInput as refused:  # the practitioner filtered on was archived
        return repr(refused.args)


@given(data=world)
@settings(
    max_examples=int(os.environ.get("FAST_PATH_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_fast_path_answers_what_the_reference_loader_answers(connection, monkeypatch, data):
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        built = build(db, data)
        fast, reference = answers(db, built, data, monkeypatch)
        assert fast == reference
        again, _ = answers(db, built, data, monkeypatch)  # from the cache now
        assert again == reference
        change(db, built, data["change"])
        fast, reference = answers(db, built, data, monkeypatch)
        assert fast == reference
    finally:
        db.close()


def test_the_equivalence_test_can_fail(connection, monkeypatch):
    """A fast path that ignored time off would be caught: the oracle differs on this world."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    data = {
        "clinics": [
            {"zone": "Europe/London", "seats": 0, "devices": None, "rooms": [["needling"]],
             "practitioners": [{"qualified": True, "shifts": [(0, 540, 1020)]}],
             "opening": [(0, 480, 1080)], "closures": []},
        ] * 2,
        "kind": "microneedling", "week": WEEKS[0], "claims": [], "time_off": [(0, 36, 4)],
        "window": (0, 24), "filters": (True, True, 500), "change": "nothing",
    }  # fmt: skip
    built = build(db, data)
    real = availability_search._read_window

    def without_time_off(*args):
        version, busy, _, key_live = real(*args)
        return version, busy, {}, key_live

    monkeypatch.setattr(availability_search, "_read_window", without_time_off)
    fast, reference = answers(db, built, data, monkeypatch)
    assert reference and fast != reference
    db.close()


# --- two workers -----------------------------------------------------------------------------------


@pytest.fixture
def two_workers(backend, tmp_path):
    """Two engines (two workers' pools, each with its own cache) on one committed database."""
    name, url = backend
    with fresh_database(name, url, tmp_path, "hc_workers") as fresh:
        first, second = make_engine(fresh), make_engine(fresh)
        try:
            yield make_sessionmaker(first), make_sessionmaker(second)
        finally:
            first.dispose()
            second.dispose()


@pytest.mark.parametrize("what", ["hours", "room", "archive", "closure", "qualification", "shift"])
def test_a_change_by_one_worker_shows_in_the_next_search_of_another(two_workers, monkeypatch, what):
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    writer, reader = two_workers
    data = {
        "clinics": [
            {"zone": "Europe/London", "seats": 0, "devices": None, "rooms": [["laser"], ["needling"]],
             "practitioners": [{"qualified": True, "shifts": [(0, 600, 720)]}],
             "opening": [(0, 480, 720)], "closures": []},
            {"zone": "America/New_York", "seats": 1, "devices": 1, "rooms": [["needling"]],
             "practitioners": [{"qualified": True, "shifts": [(0, 540, 720)]}],
             "opening": [(0, 480, 1080)], "closures": []},
        ],
        "kind": "microneedling", "week": WEEKS[0], "time_off": [],
        "claims": [(1, 38, 4) if what == "room" else (1, 36, 2)],  # the room's: 9:30-10:30 or 9:00-9:30
        "window": (0, 24), "filters": (False, True, 500), "change": what,
    }  # fmt: skip
    with writer() as db:
        built = build(db, data)
        db.commit()
    with reader() as db:
        before, reference = answers(db, built, data, monkeypatch)
        assert before == reference
        assert availability_cache.cache_for(db.connection()).get(built["org"], built["clinics"][0]) is not None
    with writer() as db:
        change(db, built, what)
        db.commit()
    with reader() as db:
        after, reference = answers(db, built, data, monkeypatch)
    assert after == reference
    assert after != before, [
        s.starts_at.time() for s in before
    ]  # each change changes this clinic's answer: a stale cache would show
