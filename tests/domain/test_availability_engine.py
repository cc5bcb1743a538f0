"""The availability engine (booking/domain/availability.py) against an independent reference, on
random searches (Hypothesis) and round-the-clock hours on DST days: no database, no HTTP."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.availability import PractitionerHours, Result, Search, Slot, find_slots, grid, open_starts
from booking.domain.errors import DomainError
from booking.domain.intervals import covers
from booking.domain.timing import Timing, instants, occupancy
from booking.domain.weekly import local_instant

UTC = UTC
LONDON = ZoneInfo("Europe/London")
SLOT_FIELDS = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at")
NOTICE = timedelta(hours=2)
GRID = 15


# =========================================================================== the engine against a reference
#
# The engine (booking.domain.availability) walks only the merged open time and checks fixed need
# offsets; here it is compared, on random plain data and without a database, with the most
# direct reading of the rules: every grid start of the window, one occupancy() per start.

ENGINE_ZONES = (
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "UTC",
)


def _change_days(zone_name: str) -> list[date]:
    """The local days of 2027 that are not 24 hours long (DST changes; Lord Howe's move 30 minutes)."""
    zone = ZoneInfo(zone_name)
    days = [date(2027, 1, 1) + timedelta(days=n) for n in range(365)]
    return [
        d
        for d in days
        if local_instant(d + timedelta(days=1), 0, zone) - local_instant(d, 0, zone) != timedelta(days=1)
    ]


ENGINE_DAYS = {name: [date(2027, 1, 13), *_change_days(name)] for name in ENGINE_ZONES}


def reference_slots(search: Search) -> Result:
    """Every grid start in order, with what a booking there would claim, checked claim by claim."""
    zone = ZoneInfo(search.zone)
    if search.order == "evening":

        def order(start):
            local = start.astimezone(zone)
            return -(local.hour * 60 + local.minute), start
    else:

        def order(start):
            return start

    def taken(resource, need):
        return any(s < need.ends_at and need.starts_at < e for s, e in search.busy.get(resource, []))

    result = Result([])
    for start in sorted(grid(search), key=order):
        at = instants(search.timing, start)
        needs = occupancy(
            search.timing,
            at,
            clinic_id=search.clinic_id,
            practitioner_id="?",
            room_id="?",
            patient_id=search.patient_id or "?",
            numbing_seats=search.numbing_seats,
            devices=search.devices,
        )
        if search.patient_id and taken(f"patient:{search.patient_id}", needs[0]):
            continue
        pools_ok = True
        for need in (n for n in needs if n.capacity is not None):
            used = {key for key in search.busy if key.startswith(f"{need.resource}#") and taken(key, need)}
            free = [n for n in range(1, need.capacity + 1) if f"{need.resource}#{n}" not in used]
            pools_ok = pools_ok and bool(free) and len(used) < need.capacity
        practitioner = next(
            (
                p.practitioner_id
                for p in search.practitioners
                if covers(p.open, start, at.ends_at)
                and not any(
                    taken(f"practitioner:{p.practitioner_id}", n) for n in needs if n.resource == "practitioner:?"
                )
            ),
            None,
        )
        room_need = next(n for n in needs if n.resource == "room:?")
        room = next((r for r in search.rooms if not taken(f"room:{r}", room_need)), None)
        if not pools_ok or practitioner is None or room is None:
            continue
        if search.patient_allows is not None:
            try:
                search.patient_allows(start)
            except DomainError as refusal:
                result.refusal = result.refusal or refusal
                continue
        result.slots.append(
            Slot(
                search.clinic_id,
                practitioner,
                room,
                search.treatment_type_id,
                at.starts_at,
                at.procedure_starts_at,
                at.ends_at,
            )
        )
        if len(result.slots) >= search.limit:
            break
    if result.slots:
        result.refusal = None
    return result


def _refuse_on_the_hour(start: datetime) -> None:
    if start.minute == 0:
        raise DomainError(f"not at {start.isoformat()}")


@st.composite
def engine_searches(draw):
    """A random Search around an ordinary day or a DST change of a zone, with random open time and claims."""
    zone_name = draw(st.sampled_from(ENGINE_ZONES))
    zone = ZoneInfo(zone_name)
    day = draw(st.sampled_from(ENGINE_DAYS[zone_name]))
    start = local_instant(day - timedelta(days=1), draw(st.integers(0, 36 * 60)), zone)
    start += timedelta(seconds=draw(st.sampled_from((0, 0, 0, 17))))
    end = start + timedelta(minutes=draw(st.integers(60, 3 * 24 * 60)))

    def instant():  # an instant around the window, on a local wall-clock minute or anywhere
        minute = draw(st.integers(-12 * 60, 4 * 24 * 60))
        if draw(st.booleans()):
            return local_instant(day - timedelta(days=1), minute, zone)
        return start + timedelta(minutes=minute, seconds=draw(st.sampled_from((0, 0, 30))))

    def intervals(max_size, longest):
        found = []
        for _ in range(draw(st.integers(0, max_size))):
            s = instant()
            found.append((s, s + timedelta(minutes=draw(st.integers(5, longest)))))
        return found

    practitioners = [PractitionerHours(f"prt_{n}", intervals(4, 16 * 60)) for n in range(draw(st.integers(1, 3)))]
    rooms = [f"roo_{n}" for n in range(draw(st.integers(1, 3)))]
    resources = (
        [f"practitioner:{p.practitioner_id}" for p in practitioners]
        + [f"room:{r}" for r in rooms]
        + ["patient:pat", "numbing:cln#1", "numbing:cln#2", "device:cln#1", "device:cln#3"]
    )
    busy = {key: intervals(6, 180) for key in draw(st.lists(st.sampled_from(resources), unique=True))}
    numbing, prep = draw(st.sampled_from((0, 30, 45))), draw(st.sampled_from((0, 5, 10)))
    timing = Timing(
        draw(st.sampled_from(("microneedling", "review"))),
        numbing,
        prep,
        draw(st.sampled_from((5, 20, 30))),
        draw(st.sampled_from((0, 5, 10))),
        draw(st.sampled_from((0, 10))),
    )
    return Search(
        clinic_id="cln",
        zone=zone_name,
        treatment_type_id="trt",
        timing=timing,
        start=start,
        end=end,
        practitioners=practitioners,
        rooms=rooms,
        busy=busy,
        numbing_seats=draw(st.sampled_from((0, 1, 2))),
        devices=draw(st.sampled_from((None, 1, 2))),
        patient_id=draw(st.sampled_from((None, "pat"))),
        patient_allows=draw(st.sampled_from((None, _refuse_on_the_hour))),
        step_minutes=draw(st.sampled_from((15, 15, 5, 10, 30, 7))),
        order=draw(st.sampled_from(("earliest", "evening"))),
        limit=draw(st.sampled_from((500, 500, 10, 1))),
    )


def _round_the_clock(zone_name: str, day: date, step: int = 15) -> Search:
    """Open from two days before `day` to two days after, one practitioner, nothing booked."""
    zone = ZoneInfo(zone_name)
    start, end = local_instant(day - timedelta(days=1), 0, zone), local_instant(day + timedelta(days=2), 0, zone)
    return Search(
        clinic_id="cln",
        zone=zone_name,
        treatment_type_id="trt",
        timing=Timing("review", 0, 0, 15, 0, 0),
        start=start,
        end=end,
        practitioners=[PractitionerHours("prt", [(start - timedelta(days=1), end + timedelta(days=1))])],
        rooms=["roo"],
        busy={},
        step_minutes=step,
        limit=10_000,
    )


@pytest.mark.parametrize(
    "zone_name, day",
    [pytest.param(name, day, id=f"{name}-{day}") for name in ENGINE_ZONES for day in ENGINE_DAYS[name]],
)
def test_open_time_walk_gives_the_grids_starts_on_dst_days(zone_name, day):
    """Open round the clock over a change: the starts are exactly the local grid's, one per instant."""
    search_ = _round_the_clock(zone_name, day)
    walked = open_starts(search_, timedelta(minutes=15))
    assert walked == set(grid(search_))
    assert walked == {s for s in walked if s.astimezone(ZoneInfo(zone_name)).minute % 15 == 0}
    assert [s.starts_at for s in find_slots(search_).slots] == sorted(walked)


@settings(max_examples=int(os.environ.get("AVAILABILITY_ENGINE_EXAMPLES", 400)), deadline=None)
@given(search_=engine_searches())
def test_the_engine_gives_what_the_reference_gives(search_):
    got, expected = find_slots(search_), reference_slots(search_)
    assert got.slots == expected.slots
    assert str(got.refusal) == str(expected.refusal)
