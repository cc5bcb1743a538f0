"""A chain-wide search for the earliest slots stops early and answers exactly what the
exhaustive search answers.

`availability_search.search` without a clinic and with `order=earliest` searches the chain stage by
stage of the window (every clinic in one statement per stage) and stops once `limit` slots are
certain to be the earliest, then gives each start the practitioner the whole-window search would;
with EARLY_STOP_LIMIT = 0 it searches every clinic whole and merges (the reference). On random small
chains (opening hours, closures, zones with different DST rules including a southern-hemisphere
one, claims, holds counting towards a daily cap, per-clinic booking policies with notice, same-day,
horizon, grid and online flags, a frontend or a staff actor, limits from 1 to the API's 500) both
must give the same slots in the same order, practitioners and rooms included; and over many clinics
the statements sent and the time the engine searches do not grow with the chain.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.policy import FRONTEND, Actor
from booking.services import availability_search
from booking.services.availability_search import Query, Settings, search
from models import Claim, Clinic, Hold, OpeningHours, Patient, Room

from .test_availability_fast_path import WEEKS, ZONES, build

SETTINGS = Settings(min_notice=timedelta(0), horizon=timedelta(days=400))

# Wider hours than the fast path's worlds, most practitioners qualified: most chains offer slots.
minutes = st.integers(0, 80).map(lambda q: q * 15)
shift = st.tuples(st.integers(0, 6), minutes, st.integers(8, 64).map(lambda q: q * 15)).map(
    lambda t: (t[0], t[1], min(24 * 60, t[1] + t[2]))
)
clinic = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),  # Australia/Sydney among them
        "seats": st.sampled_from([0, 0, 1]),
        "devices": st.sampled_from([None, None, 1]),
        "rooms": st.lists(st.sampled_from([["needling"], [], ["needling", "laser"]]), min_size=1, max_size=2),
        "practitioners": st.lists(
            st.fixed_dictionaries(
                {
                    "qualified": st.sampled_from([True, True, True, False]),
                    "shifts": st.lists(shift, min_size=1, max_size=6),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "opening": st.lists(shift, min_size=2, max_size=10),
        "closures": st.lists(st.integers(-3, 12), max_size=2),
    }
)
policy = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "min_notice_minutes": st.sampled_from([0, 60, 24 * 60, 3 * 24 * 60]),
            "horizon_days": st.integers(1, 9),
            "grid_minutes": st.sampled_from([5, 15, 20, 30, 60]),
            "same_day_booking": st.booleans(),
            "max_sessions_per_practitioner_per_day": st.integers(1, 2),
            "bookable_online": st.booleans(),
        },
    ),
)
chain = st.fixed_dictionaries(
    {
        "clinics": st.lists(clinic, min_size=2, max_size=5),
        "policies": st.lists(policy, min_size=5, max_size=5),
        "kind": st.sampled_from(["microneedling", "consultation"]),
        "week": st.sampled_from(WEEKS),
        "claims": st.lists(
            st.tuples(st.integers(0, 10_000), st.integers(-48, 9 * 24 * 4), st.integers(1, 28)), max_size=30
        ),
        "time_off": st.lists(
            st.tuples(st.integers(0, 1000), st.integers(-48, 9 * 24 * 4), st.integers(1, 60)), max_size=3
        ),
        "holds": st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 7 * 24)), max_size=4),
        "now": st.integers(-72, 48),  # hours from the week's Monday 00:00 UTC
        "window": st.tuples(st.integers(0, 4 * 24), st.integers(12, 7 * 24)),  # start hour in the week, hours long
        "limit": st.integers(1, 10),
        "by_practitioner": st.sampled_from([False, False, False, True]),
        "actor": st.sampled_from([None, "frontend", "staff"]),
    }
)


def _policies_and_holds(db: Session, built: dict, data: dict) -> None:
    for clinic_id, own in zip(built["clinics"], data["policies"], strict=False):
        db.get_one(Clinic, clinic_id).booking_policy = own
    if data["holds"]:
        patient = Patient(organization_id=built["org"], name="H")
        db.add(patient)
        db.flush()
        for pick, hour in data["holds"]:
            practitioner = built["practitioners"][pick % len(built["practitioners"])]
            clinic_id = built["clinics"][pick % len(built["clinics"])]
            room = db.scalars(sa.select(Room.id).where(Room.clinic_id == clinic_id)).first()
            start = built["origin"] + timedelta(hours=hour)
            db.add(
                Hold(
                    organization_id=built["org"],
                    clinic_id=clinic_id,
                    practitioner_id=practitioner,
                    room_id=room,
                    patient_id=patient.id,
                    treatment_type_id=built["treatment"],
                    starts_at=start,
                    procedure_starts_at=start,
                    ends_at=start + timedelta(hours=1),
                    expires_at=start,
                )
            )
    db.flush()


def _actor(which: str | None) -> Actor | None:
    if which is None:
        return None
    return Actor(key_id="key", channel=FRONTEND if which == "frontend" else "staff")


def _both(db: Session, org: str, query: Query, actor: Actor | None, monkeypatch) -> tuple[list, list]:
    early = search(db, org, query, SETTINGS, actor)
    with monkeypatch.context() as patched:
        patched.setattr(availability_search, "EARLY_STOP_LIMIT", 0)
        exhaustive = search(db, org, query, SETTINGS, actor)
    return [early[0], early[1]], [exhaustive[0], exhaustive[1]]


@given(data=chain)
@settings(
    max_examples=int(os.environ.get("EARLY_STOP_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_early_stop_answers_what_the_exhaustive_search_answers(connection, monkeypatch, data):
    _same_answers(connection, monkeypatch, data)


def _same_answers(connection, monkeypatch, data: dict) -> None:
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        built = build(db, data)
        _policies_and_holds(db, built, data)
        _practitioner_claims(db, built, data.get("loads", []))
        now = built["origin"] + timedelta(hours=data["now"])
        monkeypatch.setattr(clock, "now", lambda: now)
        start_hour, hours = data["window"]
        start = built["origin"] + timedelta(hours=start_hour)
        query = Query(
            treatment_type_id=built["treatment"],
            start=start,
            end=start + timedelta(hours=hours),
            practitioner_id=built["practitioners"][0] if data["by_practitioner"] else None,
            limit=data["limit"],
        )
        early, exhaustive = _both(db, built["org"], query, _actor(data["actor"]), monkeypatch)
        assert early == exhaustive
    finally:
        db.close()


def _practitioner_claims(db: Session, built: dict, loads: list[tuple[int, int, int]]) -> None:
    """Claims on practitioners only (pick, quarter hour from the week's Monday, quarters long), each
    left out where its practitioner is claimed already (the exclusion constraint)."""
    for pick, quarter, length in loads:
        resource = f"practitioner:{built['practitioners'][pick % len(built['practitioners'])]}"
        start = built["origin"] + timedelta(minutes=15 * quarter)
        end = start + timedelta(minutes=15 * length)
        clash = sa.select(Claim.id).where(Claim.resource == resource, Claim.starts_at < end, Claim.ends_at > start)
        if db.scalar(clash) is None:
            db.add(Claim(organization_id=built["org"], resource=resource, starts_at=start, ends_at=end))
            db.flush()


# Busy practitioners: two to four per clinic, all qualified, with claims of their own, so that which of
# them takes a start (the least loaded over the whole window, then by id) is often not the first by
# id; and limits up to the API's, so that the answer spans several stages, or the whole window.
busy_clinic = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "seats": st.sampled_from([0, 0, 1]),
        "devices": st.sampled_from([None, None, 1]),
        "rooms": st.lists(st.just(["needling"]), min_size=1, max_size=3),
        "practitioners": st.lists(
            st.fixed_dictionaries({"qualified": st.just(True), "shifts": st.lists(shift, min_size=3, max_size=7)}),
            min_size=2,
            max_size=4,
        ),
        "opening": st.lists(shift, min_size=3, max_size=10),
        "closures": st.lists(st.integers(-3, 12), max_size=1),
    }
)
busy_chain = chain.map(dict).flatmap(
    lambda base: st.fixed_dictionaries(
        {
            **{k: st.just(v) for k, v in base.items()},
            "clinics": st.lists(busy_clinic, min_size=2, max_size=6),
            "claims": st.lists(
                st.tuples(st.integers(0, 10_000), st.integers(-48, 9 * 24 * 4), st.integers(1, 16)),
                min_size=30,
                max_size=80,
            ),
            "loads": st.lists(
                st.tuples(st.integers(0, 1000), st.integers(-24, 8 * 24 * 4), st.integers(1, 16)),
                min_size=10,
                max_size=40,
            ),
            "limit": st.sampled_from([1, 2, 3, 5, 10, 20, 50, 500]),
        }
    )
)


@given(data=busy_chain)
@settings(
    max_examples=int(os.environ.get("EARLY_STOP_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_early_stop_assigns_practitioners_as_the_exhaustive_search(connection, monkeypatch, data):
    _same_answers(connection, monkeypatch, data)


# --- deterministic chains ----------------------------------------------------------------------------


def _open_all_week(zone: str, opening: tuple[int, int]) -> dict:
    return {
        "zone": zone, "seats": 0, "devices": None, "rooms": [["needling"]],
        "practitioners": [{"qualified": True, "shifts": [(d, 0, 1440) for d in range(7)]}],
        "opening": [(d, *opening) for d in range(7)], "closures": [],
    }  # fmt: skip


def _chain(db: Session, clinics: list[dict]) -> dict:
    data = {"clinics": clinics, "kind": "consultation", "week": WEEKS[0], "claims": [], "time_off": []}
    return build(db, data)


class _Counter:
    """SQL statements sent on one connection, and the time the engine searched (the sum of its
    searches' windows), by clinic."""

    def __init__(self, connection, monkeypatch) -> None:
        self.searched: dict[str, timedelta] = {}
        self.statements = 0
        real = availability_search.find_slots

        def counting(search_):
            self.searched[search_.clinic_id] = self.searched.get(search_.clinic_id, timedelta()) + (
                search_.end - search_.start
            )
            return real(search_)

        monkeypatch.setattr(availability_search, "find_slots", counting)
        sa.event.listen(connection, "before_cursor_execute", self._statement)
        self.connection = connection

    def _statement(self, *args) -> None:
        self.statements += 1

    def reset(self) -> None:
        self.searched, self.statements = {}, 0

    def close(self) -> None:
        sa.event.remove(self.connection, "before_cursor_execute", self._statement)


def _query(built: dict, limit: int) -> Query:
    return Query(built["treatment"], built["origin"], built["origin"] + timedelta(days=7), limit=limit)


def test_over_many_clinics_the_work_does_not_grow_with_the_chain(connection, monkeypatch):
    """20 and 35 clinics, all opening at 09:00 London time (or the first at 06:00, whose slots then
    come first): for every limit up to 10 a few statements are sent for either chain (one per
    stage, the chain's claims read together, and one for the practitioners' loads), the engine
    searches about as much time in all (at most twice for 35 clinics what it searches for 20, where
    the exhaustive search tries 7 days of each), and the answer is the exhaustive search's."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    counter = _Counter(connection, monkeypatch)
    try:
        work: dict[tuple[str, int, int], tuple[int, timedelta]] = {}
        for size in (20, 35):
            early_bird = _chain(db, [_open_all_week("Europe/London", (360, 1020))] + [
                _open_all_week("Europe/London", (540, 1020)) for _ in range(size - 1)])  # fmt: skip
            alike = _chain(db, [_open_all_week("Europe/London", (540, 1020)) for _ in range(size)])
            for name, built in (("early bird", early_bird), ("alike", alike)):
                search(db, built["org"], _query(built, 10), SETTINGS)  # the set-ups cached, as on a warm worker
                for limit in range(1, 11):
                    counter.reset()
                    slots = search(db, built["org"], _query(built, limit), SETTINGS)[0]
                    work[(name, limit, size)] = (counter.statements, sum(counter.searched.values(), timedelta()))
                    assert max(counter.searched.values()) <= timedelta(hours=12), (name, limit, size)  # of 7 days
                    with monkeypatch.context() as patched:
                        patched.setattr(availability_search, "EARLY_STOP_LIMIT", 0)
                        assert search(db, built["org"], _query(built, limit), SETTINGS)[0] == slots
                    assert len(slots) == limit
                    if name == "early bird":
                        assert {s.clinic_id for s in slots} == {built["clinics"][0]}
                    else:
                        assert [s.clinic_id for s in slots] == sorted(built["clinics"])[:limit]
        for name in ("early bird", "alike"):
            for limit in range(1, 11):
                (statements_20, searched_20), (statements_35, searched_35) = (
                    work[(name, limit, 20)], work[(name, limit, 35)])  # fmt: skip
                assert max(statements_20, statements_35) <= 4, (name, limit, statements_20, statements_35)
                assert searched_35 <= 2 * searched_20, (name, limit, searched_20, searched_35)
    finally:
        counter.close()
        db.close()


def test_the_equivalence_can_fail(connection, monkeypatch):
    """A bound that overstated a clinic's first possible start (here: any clinic's but the first
    one's, a day late) would stop before the clinic with the earliest slot, and the comparison
    with the exhaustive search sees it."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        built = _chain(db, [_open_all_week("Europe/London", (600, 1020)), _open_all_week("Asia/Kolkata", (540, 1020))])
        query = _query(built, 1)
        early, exhaustive = _both(db, built["org"], query, None, monkeypatch)
        assert early == exhaustive and early[0][0].clinic_id == built["clinics"][1]  # Kolkata's 09:00 is earlier
        real = availability_search._first_open

        def late(setup, *args):
            first = real(setup, *args)
            return first if setup.clinic_id == built["clinics"][0] or first is None else first + timedelta(days=1)

        monkeypatch.setattr(availability_search, "_first_open", late)
        early, exhaustive = _both(db, built["org"], query, None, monkeypatch)
        assert early != exhaustive
    finally:
        db.close()


def test_ties_between_clinics_go_by_clinic_id_as_in_the_exhaustive_search(connection, monkeypatch):
    """Two clinics whose earliest slots start at the same instant: with limit 1 the clinic with
    the smaller id answers, whichever of them is searched first."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        built = _chain(db, [_open_all_week("Europe/London", (540, 1020)), _open_all_week("Europe/Lisbon", (540, 1020))])
        for limit in (1, 2, 3):
            early, exhaustive = _both(db, built["org"], _query(built, limit), None, monkeypatch)
            assert early == exhaustive
            assert early[0][0].clinic_id == min(built["clinics"])
    finally:
        db.close()


def test_a_refusal_is_the_first_clinics_as_in_the_exhaustive_search(connection, monkeypatch):
    """Nothing anywhere: the refusal (here none) and the empty answer are the exhaustive search's."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        closed = _open_all_week("Australia/Sydney", (540, 1020)) | {"closures": list(range(-1, 9))}
        built = _chain(db, [closed, closed])
        early, exhaustive = _both(db, built["org"], _query(built, 5), None, monkeypatch)
        assert early == exhaustive == [[], None]
    finally:
        db.close()


def test_a_clinic_searched_after_the_limit_is_reached_still_offers_a_slot_at_the_limit_th_start(
    connection, monkeypatch
):
    """The clinic with the smaller id opens at 08:30, the other at 08:00: the later one is searched
    first and gives 08:00, 08:15, 08:30; the first must still be searched (up to and including
    08:30), and its 08:30 comes before the other's, as in the exhaustive search."""
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    db = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        built = _chain(db, [_open_all_week("Europe/London", (480, 1020)) for _ in range(2)])
        first = min(built["clinics"])
        db.execute(sa.update(OpeningHours).where(OpeningHours.clinic_id == first).values(start_minute=510))
        db.flush()
        early, exhaustive = _both(db, built["org"], _query(built, 3), None, monkeypatch)
        assert early == exhaustive
        assert [(s.starts_at.strftime("%H:%M"), s.clinic_id == first) for s in early[0]] == [
            ("08:00", False), ("08:15", False), ("08:30", True)]  # fmt: skip
    finally:
        db.close()
