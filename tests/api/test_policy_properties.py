"""Property: under any booking policy, availability offers a frontend key exactly what it can book.

Hypothesis draws a policy for each of the three layers (organization, clinic, treatment type:
some of min_notice_minutes, horizon_days, grid_minutes among 5/10/15/30, same_day_booking,
max_sessions_per_practitioner_per_day, bookable_online on the treatment type), a second
practitioner and whether each practitioner is bookable online, other patients' bookings (made by a
staff key overriding the policy, so they fall anywhere in the practitioners' hours), the clinic's
zone (London, New York or Sydney), the moment (seconds included, some weeks before a DST change)
and a search window. Then, with a frontend key:

- soundness: each slot /v1/availability offers (a sample of them: the first, the last and some
  between) is booked with a 201, directly or through a hold booked five minutes later, each in a
  savepoint rolled back before the next;
- the converse: under a permissive policy (no notice, a long horizon, a 5-minute grid, no cap)
  a staff key's search finds the candidates; a sample of the candidate starts the frontend was not
  offered is refused to the frontend (never a 201), each in a savepoint likewise.

The clock is the suite's frozen one (tests/conftest.py `clock`): notice is deterministic. Each
example builds its own organization; the examples share the test's transaction, rolled back at
the end (as in tests/api/test_booking_properties.py).
"""

from __future__ import annotations

import itertools
import os
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from models import Clinic, Practitioner, TreatmentType

from .. import factories
from ..booking_world import MONDAY, build_world
from ..helpers import Caller, make_organization

SLOT_FIELDS = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")
POLICY_CODES = {
    "too_soon",
    "too_far_ahead",
    "off_grid",
    "same_day_not_allowed",
    "daily_limit_reached",
    "not_bookable_online",
}
PERMISSIVE = {
    "min_notice_minutes": 0,
    "horizon_days": 365,
    "grid_minutes": 5,
    "same_day_booking": True,
    "max_sessions_per_practitioner_per_day": None,
    "bookable_online": True,
}
CLEARED = dict.fromkeys(PERMISSIVE)
SAMPLE = 6  # slots booked per example, each way

EXAMPLES = int(os.environ.get("POLICY_PROPERTY_EXAMPLES", "25"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def layer(bookable_online: bool = False):
    """Some of the policy's fields, as one layer sets them."""
    values = {
        "min_notice_minutes": st.sampled_from([0, 30, 75, 120, 240, 1440]),
        "horizon_days": st.sampled_from([1, 2, 3, 7, 90]),
        "grid_minutes": st.sampled_from([5, 10, 15, 30]),
        "same_day_booking": st.booleans(),
        "max_sessions_per_practitioner_per_day": st.sampled_from([1, 2, 3]),
    }
    if bookable_online:
        values["bookable_online"] = st.sampled_from([True, True, True, False])
    return st.fixed_dictionaries({}, optional=values)


# Another patient's booking: days after the clock's local date, minutes after 09:00 local, the
# practitioner, the room, and a review rather than a microneedling session.
bookings = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 7 * 60 // 15).map(lambda q: q * 15),
        st.integers(0, 1),
        st.integers(0, 1),
        st.booleans(),
    ),
    max_size=6,
)

cases = st.fixed_dictionaries(
    {
        "weeks": st.sampled_from([0, 11, 42]),  # winter, the week before BST begins, before it ends
        "zone": st.sampled_from(["Europe/London", "Europe/London", "America/New_York", "Australia/Sydney"]),
        "via_hold": st.booleans(),  # book each offered slot through a hold rather than directly
        "minutes": st.sampled_from([0, 7, 58, 61, 120, 9 * 60 + 30]),  # after 08:00 UTC on the Monday
        "seconds": st.sampled_from([0, 45]),
        "organization": layer(),
        "clinic": layer(),
        "treatment_type": layer(bookable_online=True),
        "online": st.tuples(st.sampled_from([True, True, False]), st.booleans()),
        "bookings": bookings,
        "review": st.booleans(),
        "window": st.tuples(st.sampled_from([0, 60, 24 * 60]), st.sampled_from([6 * 60, 24 * 60, 3 * 24 * 60])),
    }
)

_organizations = itertools.count()


def frontend_of(admin: Caller) -> Caller:
    """A key made the way an integrator gets one: POST /v1/api-keys, no channel named (frontend)."""
    key = admin.create("/v1/api-keys", {"name": "Booking widget", "scopes": ["read", "book"]})
    assert key["channel"] == "frontend", key
    return Caller(admin.app, admin.client, key["secret"], admin.organization_id)


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def set_policies(admin: Caller, world, treatment_type_id: str, case: dict) -> None:
    ok(admin.patch("/v1/organization", json={"booking_policy": case["organization"]}))
    ok(admin.patch(f"/v1/clinics/{world.clinic['id']}", json={"booking_policy": case["clinic"]}))
    ok(admin.patch(f"/v1/treatment-types/{treatment_type_id}", json={"booking_policy": case["treatment_type"]}))


def in_savepoint(connection, call):
    """`call()` in a savepoint of the test's transaction, rolled back after: a fresh state each time."""
    nested = connection.begin_nested()
    try:
        return call()
    finally:
        nested.rollback()


def sample(items: list, n: int = SAMPLE) -> list:
    """The first, the last and evenly spread ones between."""
    if len(items) <= n:
        return list(items)
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def build(app, client, clock, case: dict):
    clock.now = MONDAY + timedelta(weeks=case["weeks"], hours=8, minutes=case["minutes"], seconds=case["seconds"])
    admin = make_organization(app, client, f"Policy property {next(_organizations)}")
    world = build_world(admin, clock, timezone_name=case["zone"])
    with app.extensions["db_write_sessions"]() as db:
        clinic = db.get_one(Clinic, world.clinic["id"])
        types = [
            db.get_one(TreatmentType, getattr(world, k)["id"]) for k in ("consultation", "microneedling", "review")
        ]
        second = factories.make_practitioner(db, [clinic], types, name="Dr Two", hours=("10:00", "18:00"))
        db.get_one(Practitioner, world.practitioner["id"]).bookable_online = case["online"][0]
        second.bookable_online = case["online"][1]
        others = [factories.make_patient(db, admin.organization_id, name=f"Other {i}") for i in range(6)]
        db.commit()
        practitioners = [world.practitioner["id"], second.id]
        others = [p.id for p in others]
    world.consulted()
    for other in others:
        world.consulted(other)
    for (day, minute, who, room, review), patient_id in zip(case["bookings"], others, strict=False):
        zone = ZoneInfo(case["zone"])
        date = clock.now.astimezone(zone).date() + timedelta(days=day)
        start = datetime.combine(date, time(9), zone) + timedelta(minutes=minute)
        response = admin.post(
            "/v1/appointments",
            json=world.slot(
                practitioner_id=practitioners[who],
                room_id=world.rooms[room]["id"],
                treatment_type_id=(world.review if review else world.microneedling)["id"],
                patient_id=patient_id,
                starts_at=start.isoformat(),
                override_reason="Set up by the property",
            ),
        )
        assert response.status_code in (201, 409, 422), response.get_json()
        note(f"booking {day, minute, who, room, review}: {response.status_code} {response.get_json().get('code')}")
    treatment_type = world.review if case["review"] else world.microneedling
    set_policies(admin, world, treatment_type["id"], case)
    return admin, world, treatment_type


def test_a_frontend_can_book_every_slot_it_is_offered(app, client, clock, connection):
    booked, refused = [], []

    @PROPERTY
    @example(  # the 75-second notice of issue 16, a 30-minute grid and a daily cap of one
        case={
            "weeks": 0,
            "zone": "Europe/London",
            "via_hold": True,
            "minutes": 118,
            "seconds": 45,
            "organization": {"grid_minutes": 30},
            "clinic": {"max_sessions_per_practitioner_per_day": 1},
            "treatment_type": {},
            "online": (True, True),
            "bookings": [(0, 60, 0, 0, True), (1, 0, 1, 1, False)],
            "review": False,
            "window": (0, 24 * 60),
        }
    )
    @example(  # no same-day bookings, a 10-minute grid, a day's horizon, across the spring change
        case={
            "weeks": 11,
            "zone": "Europe/London",
            "via_hold": False,
            "minutes": 9 * 60 + 30,
            "seconds": 0,
            "organization": {"same_day_booking": False, "horizon_days": 7},
            "clinic": {"grid_minutes": 10},
            "treatment_type": {"min_notice_minutes": 30, "horizon_days": 2},
            "online": (False, True),
            "bookings": [(1, 30, 1, 0, False)],
            "review": True,
            "window": (0, 3 * 24 * 60),
        }
    )
    @example(  # no notice at all, the clock on the grid: a start at this very instant is in the past
        case={
            "weeks": 42,
            "zone": "Europe/London",
            "via_hold": False,
            "minutes": 120,
            "seconds": 0,
            "organization": {"min_notice_minutes": 0, "grid_minutes": 5},
            "clinic": {},
            "treatment_type": {},
            "online": (True, False),
            "bookings": [],
            "review": True,
            "window": (0, 6 * 60),
        }
    )
    @given(case=cases)
    def check(case):
        admin, world, treatment_type = build(app, client, clock, case)
        frontend = frontend_of(admin)
        now = clock.now
        query = {
            "clinic_id": world.clinic["id"],
            "treatment_type_id": treatment_type["id"],
            "patient_id": world.patient["id"],
            "start": (now + timedelta(minutes=case["window"][0])).isoformat(),
            "end": (now + timedelta(minutes=sum(case["window"]))).isoformat(),
            "limit": 500,
        }
        policy = ok(admin.get(f"/v1/treatment-types/{treatment_type['id']}"))["booking_policy"]
        offered = ok(frontend.get("/v1/availability", query_string=query))["data"]
        note(f"now {now.isoformat()}, effective {policy}, offered {[s['starts_at'] for s in offered]}")

        def book(slot):
            body = {k: slot[k] for k in SLOT_FIELDS}
            return frontend.post("/v1/appointments", json={**body, "patient_id": world.patient["id"]})

        def hold_and_book(slot):
            body = {k: slot[k] for k in SLOT_FIELDS}
            hold = frontend.post("/v1/holds", json={**body, "patient_id": world.patient["id"]})
            if hold.status_code != 201:
                return hold
            clock.advance(minutes=5)  # the patient fills in the form
            try:
                return frontend.post("/v1/appointments", json={"hold_id": hold.get_json()["id"]})
            finally:
                clock.now = now

        for slot in sample(offered):
            response = in_savepoint(connection, lambda slot=slot: (hold_and_book if case["via_hold"] else book)(slot))
            assert response.status_code == 201, (slot, response.get_json())
            booked.append(slot)

        # The converse: what a permissive policy lets a staff key find, the frontend was not offered
        # at that start, and it cannot book it.
        def candidates():
            ok(admin.patch("/v1/organization", json={"booking_policy": PERMISSIVE}))
            ok(admin.patch(f"/v1/clinics/{world.clinic['id']}", json={"booking_policy": CLEARED}))
            ok(admin.patch(f"/v1/treatment-types/{treatment_type['id']}", json={"booking_policy": CLEARED}))
            return ok(admin.get("/v1/availability", query_string=query))["data"]

        starts = {datetime.fromisoformat(s["starts_at"]) for s in offered}
        missing = [
            s for s in in_savepoint(connection, candidates) if datetime.fromisoformat(s["starts_at"]) not in starts
        ]
        for slot in sample(missing):
            response = in_savepoint(connection, lambda slot=slot: book(slot))
            assert response.status_code != 201, (f"bookable by the frontend but not offered: {slot}", policy)
            code = response.get_json()["code"]
            assert code in POLICY_CODES | {"slot_unavailable"}, (slot, str(response.get_json()))
            refused.append(code)

    check()
    assert len(booked) >= 6 and len(refused) >= 6, (booked, refused)  # not vacuous: the examples alone do
