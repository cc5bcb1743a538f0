"""booking.domain.timing, booking.domain.intervals and booking.domain.rules as plain functions: no app, no database.

Minute offsets are from BASE (a Monday, 09:00 UTC). DST facts (2026): Europe/London changes on
Sunday 29 March and Sunday 25 October; America/New_York on Sunday 8 March and Sunday 1 November.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.calendar_days import Dated
from booking.domain.errors import (
    AreaNotAllowed,
    ConsultationRequired,
    Contraindicated,
    CourseComplete,
    DomainError,
    IntervalTooShort,
    InvalidInput,
    NotQualified,
    NumbingLeadTooShort,
    SlotUnavailable,
)
from booking.domain.intervals import covers, intersect, merge, open_time, subtract
from booking.domain.rules import (
    Booked,
    Busy,
    Recorded,
    assign_units,
    check_area,
    check_consultation,
    check_contraindications,
    check_course_cap,
    check_interval,
    check_qualified,
    check_recorded_session,
    conflicts,
    earliest_start,
    raise_if_blocked,
)
from booking.domain.timing import Instants, Need, Timing, instants, occupancy
from booking.domain.weekly import Shift

UTC = UTC
BASE = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
FAST = settings(max_examples=150, deadline=None)
SESSION = Timing("microneedling", 30, 5, 30, 10, 10)  # docs/rules.md defaults
REVIEW = Timing("review", 0, 0, 15, 0, 0)
CONSULTATION = Timing("consultation", 0, 0, 30, 0, 0)
IDS = dict(clinic_id="cln_x", practitioner_id="prc_1", room_id="rom_1", patient_id="pat_1")


def m(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def d(days: int) -> datetime:
    return BASE + timedelta(days=days)


def s(days: int, zone: str = "UTC") -> Dated:
    """A session `days` after BASE, at a clinic in `zone`."""
    return Dated(d(days), zone)


def midnight(days: int) -> datetime:
    """The first instant (UTC) of the date `days` after BASE's."""
    return datetime.combine(BASE.date() + timedelta(days=days), time(0), UTC)


def spans(needs, prefix: str) -> list[tuple[datetime, datetime]]:
    return sorted((n.starts_at, n.ends_at) for n in needs if n.resource.startswith(prefix))


def as_busy(needs, **ids) -> list[Busy]:
    return [Busy(n.resource, n.starts_at, n.ends_at, **ids) for n in needs]


def claims(timing: Timing, start: int, **ids) -> list[Need]:
    return occupancy(timing, instants(timing, m(start)), **{**IDS, **ids})


# --- instants() ----------------------------------------------------------------------------


def test_procedure_starts_after_the_numbing_lead_by_default():
    at = instants(SESSION, BASE)
    assert at == Instants(BASE, m(30), m(30 + 30 + 10))


def test_a_procedure_start_before_the_numbing_lead_is_refused_with_the_earliest_start():
    with pytest.raises(NumbingLeadTooShort) as caught:
        instants(SESSION, BASE, m(29))
    assert caught.value.code == "numbing_lead_too_short"
    assert caught.value.facts["earliest_procedure_start"] == m(30)


def test_a_procedure_start_more_than_60_minutes_after_arrival_is_refused():
    assert instants(SESSION, BASE, m(60)).procedure_starts_at == m(60)
    with pytest.raises(InvalidInput) as caught:
        instants(SESSION, BASE, m(61))
    assert "procedure_starts_at" in caught.value.errors


@pytest.mark.parametrize("timing", [REVIEW, CONSULTATION], ids=["review", "consultation"])
@pytest.mark.parametrize("offset", [-5, 1, 30])
def test_without_numbing_the_procedure_must_start_on_arrival(timing, offset):
    assert instants(timing, BASE, BASE) == instants(timing, BASE) == Instants(BASE, BASE, m(timing.procedure_minutes))
    with pytest.raises(DomainError):
        instants(timing, BASE, m(offset))


@FAST
@given(
    numbing=st.integers(20, 60),
    procedure=st.integers(5, 240),
    aftercare=st.integers(0, 60),
    offset=st.integers(-30, 90),
)
def test_instants_accept_exactly_the_procedure_starts_between_the_lead_and_60_minutes(
    numbing, procedure, aftercare, offset
):
    timing = Timing("microneedling", numbing, 5, procedure, aftercare, 10)
    if offset < numbing:
        with pytest.raises(NumbingLeadTooShort):
            instants(timing, BASE, m(offset))
    elif offset > 60:
        with pytest.raises(InvalidInput):
            instants(timing, BASE, m(offset))
    else:
        at = instants(timing, BASE, m(offset))
        assert at == Instants(BASE, m(offset), m(offset + procedure + aftercare))


# --- occupancy() ---------------------------------------------------------------------------


def test_default_session_claims_practitioner_around_the_numbing_gap_room_with_turnover_and_patient():
    needs = claims(SESSION, 0)
    assert spans(needs, "practitioner:prc_1") == [(m(0), m(5)), (m(30), m(70))]
    assert spans(needs, "room:rom_1") == [(m(0), m(80))]
    assert spans(needs, "patient:pat_1") == [(m(0), m(70))]
    assert {n.resource.split(":")[0] for n in needs} == {"practitioner", "room", "patient"}
    assert all(n.capacity is None for n in needs)


def test_with_a_numbing_area_the_room_is_claimed_from_the_needling_and_the_pool_before_it():
    needs = occupancy(SESSION, instants(SESSION, BASE), numbing_seats=3, **IDS)
    assert spans(needs, "room:") == [(m(30), m(80))]
    pool = [n for n in needs if n.resource.startswith("numbing:")]
    assert pool == [Need("numbing:cln_x", m(0), m(30), 3)]
    assert spans(needs, "practitioner:") == [(m(0), m(5)), (m(30), m(70))]


def test_counted_devices_are_a_pool_over_the_procedure_only():
    needs = occupancy(SESSION, instants(SESSION, BASE), devices=2, **IDS)
    assert [n for n in needs if n.resource.startswith("device:")] == [Need("device:cln_x", m(30), m(60), 2)]
    assert not [n for n in occupancy(SESSION, instants(SESSION, BASE), **IDS) if n.resource.startswith("device:")]


@pytest.mark.parametrize("timing", [REVIEW, CONSULTATION], ids=["review", "consultation"])
def test_consultation_and_review_claim_the_practitioner_for_the_whole_visit_and_no_pool(timing):
    needs = occupancy(timing, instants(timing, BASE), numbing_seats=2, devices=2, **IDS)
    end = m(timing.procedure_minutes)
    assert spans(needs, "practitioner:") == [(BASE, end)]
    assert spans(needs, "room:") == [(BASE, end)]
    assert not [n for n in needs if n.capacity is not None]


@FAST
@given(
    numbing=st.integers(20, 60),
    prep=st.integers(0, 60),
    procedure=st.integers(5, 240),
    aftercare=st.integers(0, 60),
    turnover=st.integers(0, 60),
    extra=st.integers(0, 40),
    seats=st.integers(0, 3),
)
def test_the_practitioner_is_never_claimed_while_the_cream_works(
    numbing, prep, procedure, aftercare, turnover, extra, seats
):
    timing = Timing("microneedling", numbing, prep, procedure, aftercare, turnover)
    at = instants(timing, BASE, m(min(numbing + extra, 60)))
    needs = occupancy(timing, at, numbing_seats=seats, **IDS)
    gap = (m(prep), at.procedure_starts_at)
    practitioner = spans(needs, "practitioner:")
    assert not intersect(practitioner, [gap])
    assert all(a[1] <= b[0] for a, b in pairwise(practitioner))  # no minute claimed twice
    assert merge([*practitioner, gap]) == [(at.starts_at, at.ends_at)]
    # The patient's place (numbing chair or room) is covered from arrival to departure plus turnover.
    place = spans(needs, "room:") + spans(needs, "numbing:")
    assert merge(place) == [(at.starts_at, at.ends_at + timedelta(minutes=turnover))]


# --- the numbing-gap payoff ----------------------------------------------------------------


def test_one_practitioner_treats_a_second_patient_arriving_25_minutes_later_in_another_room():
    short = Timing("microneedling", 30, 5, 20, 5, 10)
    first = claims(short, 0, patient_id="pat_a", room_id="rom_1")
    second = claims(short, 25, patient_id="pat_b", room_id="rom_2")
    assert spans(first, "practitioner:") == [(m(0), m(5)), (m(30), m(55))]
    assert spans(second, "practitioner:") == [(m(25), m(30)), (m(55), m(80))]
    assigned, blocking = conflicts(second, as_busy(first, appointment_id="apt_a"))
    assert blocking == []
    assert len(assigned) == len(second)
    # One minute earlier and the second patient's prep collides with the first's needling.
    _, blocking = conflicts(claims(short, 26, patient_id="pat_b", room_id="rom_2"), as_busy(first))
    assert {b.resource for b in blocking} == {"practitioner:prc_1"}


@pytest.mark.parametrize("review_start,fits", [(4, False), (5, True), (10, True), (15, True), (16, False)])
def test_a_review_fits_inside_a_sessions_numbing_time(review_start, fits):
    session = claims(SESSION, 0, patient_id="pat_a", room_id="rom_1")
    review = claims(REVIEW, review_start, patient_id="pat_b", room_id="rom_2")
    _, blocking = conflicts(review, as_busy(session, appointment_id="apt_a"))
    assert (blocking == []) is fits


# --- calendar: interval algebra against a minute-set oracle --------------------------------

intervals = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: (m(t[0]), m(t[1]))), max_size=8)


def minutes_of(ivs) -> set[int]:
    return {
        k for s, e in ivs for k in range(int((s - BASE).total_seconds() // 60), int((e - BASE).total_seconds() // 60))
    }


def normalised(ivs) -> bool:
    return all(s < e for s, e in ivs) and all(a[1] < b[0] for a, b in pairwise(ivs))


@FAST
@given(intervals)
def test_merge_keeps_every_minute_and_yields_sorted_disjoint_non_touching_intervals(a):
    result = merge(a)
    assert minutes_of(result) == minutes_of(a)
    assert normalised(result)


@FAST
@given(intervals, intervals)
def test_subtract_is_set_difference(a, b):
    result = subtract(a, b)
    assert minutes_of(result) == minutes_of(a) - minutes_of(b)
    assert normalised(result)


@FAST
@given(intervals, intervals)
def test_intersect_is_set_intersection(a, b):
    result = intersect(a, b)
    assert minutes_of(result) == minutes_of(a) & minutes_of(b)
    assert normalised(result)


@FAST
@given(intervals, st.integers(0, 60), st.integers(1, 20))
def test_covers_means_every_minute_of_the_span_is_inside(a, start, length):
    assert covers(a, m(start), m(start + length)) == (set(range(start, start + length)) <= minutes_of(a))


# --- calendar: open time -------------------------------------------------------------------

LONDON = "Europe/London"


def local(zone: str, day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), ZoneInfo(zone)).astimezone(UTC)


def test_open_time_is_opening_hours_and_shift_less_closures_and_time_off():
    monday = date(2026, 6, 1)
    tuesday, wednesday = monday + timedelta(days=1), monday + timedelta(days=2)
    result = open_time(
        opening=[Shift(day, 9 * 60, 18 * 60, zone=LONDON) for day in range(5)],
        working=[
            Shift(0, 8 * 60, 12 * 60, zone=LONDON),
            Shift(0, 13 * 60, 20 * 60, zone=LONDON),
            Shift(1, 10 * 60, 16 * 60, zone=LONDON),
            Shift(2, 10 * 60, 16 * 60, zone=LONDON),
            Shift(5, 10 * 60, 16 * 60, zone=LONDON),
        ],  # Saturday: the clinic is closed
        closures=[(wednesday, wednesday)],
        time_off=[(local(LONDON, tuesday, "11:00"), local(LONDON, tuesday, "12:30"))],
        zone=LONDON,
        start=local(LONDON, monday, "00:00"),
        end=local(LONDON, monday + timedelta(days=7), "00:00"),
    )
    assert result == [
        (local(LONDON, monday, "09:00"), local(LONDON, monday, "12:00")),
        (local(LONDON, monday, "13:00"), local(LONDON, monday, "18:00")),
        (local(LONDON, tuesday, "10:00"), local(LONDON, tuesday, "11:00")),
        (local(LONDON, tuesday, "12:30"), local(LONDON, tuesday, "16:00")),
    ]


@pytest.mark.parametrize(
    "zone,change",
    [
        (LONDON, date(2026, 3, 29)),
        (LONDON, date(2026, 10, 25)),
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
    ],
)
def test_a_9_to_5_shift_stays_9_to_5_local_across_dst_changes(zone, change):
    every_day = [Shift(day, 9 * 60, 17 * 60, zone=zone) for day in range(7)]
    days = [change + timedelta(days=k) for k in range(-3, 4)]
    result = open_time(
        opening=every_day,
        working=every_day,
        closures=[],
        time_off=[],
        zone=zone,
        start=local(zone, days[0], "00:00"),
        end=local(zone, days[-1] + timedelta(days=1), "00:00"),
    )
    tz = ZoneInfo(zone)
    assert [(s.astimezone(tz).replace(tzinfo=None), e.astimezone(tz).replace(tzinfo=None)) for s, e in result] == [
        (datetime.combine(day, time(9)), datetime.combine(day, time(17))) for day in days
    ]
    assert result[0][0].astimezone(tz).utcoffset() != result[-1][0].astimezone(tz).utcoffset()


# --- check_interval / earliest_start -------------------------------------------------------


@pytest.mark.parametrize("gap", [-27, -1, 0, 1, 27])
def test_sessions_closer_than_the_minimum_are_refused_in_either_direction(gap):
    with pytest.raises(IntervalTooShort) as caught:
        check_interval([s(0)], s(gap), 28)
    assert caught.value.code == "interval_too_short"
    assert caught.value.facts["conflicting_starts"] == [BASE]
    assert caught.value.facts["earliest_start"] == midnight(28)


@pytest.mark.parametrize("gap", [-28, 28, 60])
def test_sessions_exactly_the_minimum_apart_are_accepted(gap):
    check_interval([s(0)], s(gap), 28)
    check_interval([s(0)], Dated(midnight(gap), "UTC"), 28)  # any time on the 28th date


def test_no_minimum_means_no_interval_check():
    check_interval([s(0)], s(0), None)


@FAST
@given(st.lists(st.integers(0, 200), max_size=6), st.integers(0, 200), st.integers(1, 60))
def test_earliest_start_is_the_first_acceptable_day_from_start(previous_days, start_day, min_days):
    previous = [s(k) for k in previous_days]
    earliest = earliest_start(previous, s(start_day), min_days)
    assert earliest >= d(start_day)
    check_interval(previous, Dated(earliest, "UTC"), min_days)
    for day in range(start_day, (earliest.date() - BASE.date()).days):
        with pytest.raises(IntervalTooShort) as caught:
            check_interval(previous, s(day), min_days)
        assert caught.value.facts["earliest_start"] == earliest_start(previous, s(day), min_days)


@FAST
@given(st.lists(st.integers(0, 200), max_size=6), st.integers(0, 200))
def test_check_interval_refuses_iff_some_previous_start_is_closer_than_the_minimum(previous_days, start_day):
    refused = any(abs(start_day - k) < 28 for k in previous_days)
    try:
        check_interval([s(k) for k in previous_days], s(start_day), 28)
    except IntervalTooShort:
        assert refused
    else:
        assert not refused


# --- check_consultation --------------------------------------------------------------------


@pytest.mark.parametrize("consulted,ok", [(-1, True), (-180, True), (-181, False), (0, False), (1, False)])
def test_the_first_session_needs_a_consultation_within_180_days_before_it(consulted, ok):
    call = dict(needs_consultation=True, consultations=[d(consulted)], start=BASE, valid_days=180)
    if ok:
        check_consultation(**call)
    else:
        with pytest.raises(ConsultationRequired):
            check_consultation(**call)


def test_the_consultation_window_follows_valid_days_and_later_sessions_need_none():
    with pytest.raises(ConsultationRequired):
        check_consultation(needs_consultation=True, consultations=[d(-31)], start=BASE, valid_days=30)
    check_consultation(needs_consultation=True, consultations=[d(-30)], start=BASE, valid_days=30)
    check_consultation(needs_consultation=False, consultations=[], start=BASE, valid_days=30)


# --- check_course_cap ----------------------------------------------------------------------


def test_a_course_at_its_cap_takes_no_more_sessions():
    check_course_cap(sessions=[s(0), s(40), s(80)], start=s(120), max_sessions=4, per_365_days=None)
    with pytest.raises(CourseComplete) as caught:
        check_course_cap(sessions=[s(0), s(40), s(80), s(120)], start=s(160), max_sessions=4, per_365_days=None)
    assert caught.value.code == "course_complete"


@pytest.mark.parametrize("day,ok", [(300, False), (364, False), (365, True), (366, True)])
def test_ageing_allows_two_sessions_in_any_rolling_365_days(day, ok):
    call = dict(sessions=[s(0), s(200)], start=s(day), max_sessions=6, per_365_days=2)
    if ok:
        check_course_cap(**call)
    else:
        with pytest.raises(CourseComplete):
            check_course_cap(**call)


@FAST
@given(st.lists(st.integers(0, 800), max_size=5), st.integers(0, 800), st.integers(1, 3))
def test_the_rolling_cap_refuses_iff_some_365_day_window_around_the_start_is_over_it(sessions, start, per):
    refused = any(sum(w <= k < w + 365 for k in sessions) + 1 > per for w in range(start - 364, start + 1))
    try:
        check_course_cap(sessions=[s(k) for k in sessions], start=s(start), max_sessions=20, per_365_days=per)
    except CourseComplete as refusal:
        assert refused
        # earliest_start: the first later date the cap allows (every date between is refused).
        allowed = next(
            day
            for day in range(start + 1, 2000)
            if all(sum(w <= k < w + 365 for k in sessions) + 1 <= per for w in range(day - 364, day + 1))
        )
        assert refusal.facts["earliest_start"] == d(allowed).replace(hour=0)  # the date's first instant
    else:
        assert not refused


# --- contraindications, areas, qualification -----------------------------------------------


def _recorded(*codes: str) -> list[Recorded]:
    return [Recorded(code) for code in codes]


def test_contraindications_block_microneedling_and_are_named_sorted():
    with pytest.raises(Contraindicated) as caught:
        check_contraindications("microneedling", _recorded("rosacea", "active_acne"), Dated(BASE, "Europe/London"))
    assert caught.value.facts["contraindications"] == ["active_acne", "rosacea"]
    assert "active_acne, rosacea" in caught.value.detail
    assert "earliest_start" not in caught.value.facts  # a permanent one has no end to wait for
    check_contraindications("microneedling", [], Dated(BASE, "Europe/London"))


@pytest.mark.parametrize("kind", ["consultation", "review"])
def test_contraindications_do_not_block_consultations_or_reviews(kind):
    check_contraindications(kind, _recorded("active_acne", "rosacea"), Dated(BASE, "Europe/London"))
    check_contraindications(kind, [Recorded("pregnancy", date(2026, 6, 1))], Dated(BASE, "Europe/London"))


# A temporary contraindication (`until`: the first local date it no longer applies), dated in the
# session's clinic's zone. Australia/Sydney: AEST (+10) in June; 1 June 00:00 there is 31 May 14:00 UTC.
SYDNEY = "Australia/Sydney"


@pytest.mark.parametrize(
    ("start", "zone", "refused"),
    [
        (datetime(2026, 5, 31, 13, 59, tzinfo=UTC), SYDNEY, True),  # 31 May 23:59 in Sydney
        (datetime(2026, 5, 31, 14, 0, tzinfo=UTC), SYDNEY, False),  # 1 June 00:00 in Sydney
        (datetime(2026, 5, 31, 22, 0, tzinfo=UTC), "Europe/London", True),  # 31 May 23:00 BST
        (datetime(2026, 5, 31, 23, 0, tzinfo=UTC), "Europe/London", False),  # 1 June 00:00 BST
        (datetime(2026, 6, 1, 3, 0, tzinfo=UTC), "America/New_York", True),  # 31 May 23:00 EDT
        (datetime(2026, 6, 1, 4, 0, tzinfo=UTC), "America/New_York", False),
    ],
)
def test_a_temporary_contraindication_applies_to_local_dates_before_until(start, zone, refused):
    recorded = [Recorded("recent_isotretinoin", date(2026, 6, 1))]
    if not refused:
        check_contraindications("microneedling", recorded, Dated(start, zone))
        return
    with pytest.raises(Contraindicated) as caught:
        check_contraindications("microneedling", recorded, Dated(start, zone))
    first = datetime(2026, 6, 1, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    assert caught.value.facts["earliest_start"] == first
    assert caught.value.facts["until"] == "2026-06-01"
    assert caught.value.facts["contraindications"] == ["recent_isotretinoin"]


def test_the_latest_until_is_the_earliest_start_and_a_permanent_one_has_none():
    session = Dated(datetime(2026, 5, 4, 9, tzinfo=UTC), SYDNEY)
    temporary = [Recorded("pregnancy", date(2026, 12, 1)), Recorded("eczema_flare", date(2026, 6, 1))]
    with pytest.raises(Contraindicated) as caught:
        check_contraindications("microneedling", temporary, session)
    assert caught.value.facts["earliest_start"] == datetime(2026, 11, 30, 13, tzinfo=UTC)  # AEDT (+11) then
    assert caught.value.facts["contraindications"] == ["eczema_flare", "pregnancy"]
    # Past the flare, only the pregnancy is active: it alone is named.
    later = Dated(datetime(2026, 7, 1, 9, tzinfo=UTC), SYDNEY)
    with pytest.raises(Contraindicated) as caught:
        check_contraindications("microneedling", temporary, later)
    assert caught.value.facts["contraindications"] == ["pregnancy"]
    with pytest.raises(Contraindicated) as caught:
        check_contraindications("microneedling", [*temporary, Recorded("rosacea")], session)
    assert "earliest_start" not in caught.value.facts and "until" not in caught.value.facts


def test_an_area_outside_the_list_is_refused_for_sessions_only():
    check_area("face", ["face", "neck"], "microneedling")
    check_area(None, ["face"], "microneedling")
    check_area("hands", [], "review")
    with pytest.raises(AreaNotAllowed) as caught:
        check_area("hands", ["face", "neck"], "microneedling")
    assert caught.value.code == "area_not_allowed"
    assert caught.value.facts == {"area": "hands", "allowed_areas": ["face", "neck"]}


QUALIFIED = dict(
    treatment_type_id="trt_1",
    qualified_ids=["trt_1"],
    practitioner_clinic_ids=["cln_x"],
    clinic_id="cln_x",
    room_clinic_id="cln_x",
    room_capabilities=["needling"],
    required_capability="needling",
)


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"practitioner_clinic_ids": ["cln_y"]}, "practitioner_clinic"),
        ({"qualified_ids": ["trt_2"]}, "practitioner_treatment_type"),
        ({"room_clinic_id": "cln_y"}, "room_clinic"),
        ({"room_capabilities": []}, "room_capability"),
    ],
)
def test_each_qualification_failure_names_its_reason(change, reason):
    with pytest.raises(NotQualified) as caught:
        check_qualified(**{**QUALIFIED, **change})
    assert caught.value.code == "not_qualified"
    assert caught.value.facts["reason"] == reason


def test_a_qualified_practitioner_in_a_capable_room_passes():
    check_qualified(**QUALIFIED)
    check_qualified(**{**QUALIFIED, "room_capabilities": [], "required_capability": None})


# --- conflicts() and raise_if_blocked() ----------------------------------------------------

CHAIR = Need("numbing:cln_x", m(0), m(30), capacity=2)


def test_a_full_pool_blocks_and_the_409_lists_only_what_blocks():
    busy = [
        Busy("numbing:cln_x#1", m(-10), m(10), appointment_id="apt_1"),
        Busy("numbing:cln_x#2", m(20), m(50), hold_id="hld_2"),
        Busy("numbing:cln_y#1", m(0), m(30), appointment_id="apt_other_clinic"),
        Busy("numbing:cln_x#2", m(30), m(60), appointment_id="apt_touching"),
    ]
    assigned, blocking = conflicts([CHAIR], busy)
    assert assigned == {}
    assert sorted(b.resource for b in blocking) == ["numbing:cln_x#1", "numbing:cln_x#2"]
    with pytest.raises(SlotUnavailable) as caught:
        raise_if_blocked(blocking)
    assert caught.value.code == "slot_unavailable"
    assert caught.value.facts == {
        "conflicts": [
            {
                "resource": "numbing",
                "resource_id": "cln_x",
                "starts_at": m(-10),
                "ends_at": m(10),
                "appointment_id": "apt_1",
            },
            {"resource": "numbing", "resource_id": "cln_x", "starts_at": m(20), "ends_at": m(50), "hold_id": "hld_2"},
        ]
    }


def test_a_free_unit_of_the_pool_is_assigned():
    assigned, blocking = conflicts([CHAIR], [Busy("numbing:cln_x#1", m(0), m(30), appointment_id="apt_1")])
    assert blocking == []
    assert list(assigned.values()) == ["numbing:cln_x#2"]
    raise_if_blocked(blocking)


def test_a_claim_blocking_two_needs_is_listed_once():
    needs = claims(SESSION, 0)
    _, blocking = conflicts(needs, [Busy("practitioner:prc_1", m(-60), m(120), appointment_id="apt_1")])
    with pytest.raises(SlotUnavailable) as caught:
        raise_if_blocked(blocking)
    assert caught.value.facts["conflicts"] == [
        {
            "resource": "practitioner",
            "resource_id": "prc_1",
            "starts_at": m(-60),
            "ends_at": m(120),
            "appointment_id": "apt_1",
        }
    ]


def test_a_pool_without_units_is_never_silently_met():
    # A clinic may count 0 devices: then no needling fits, and the service must get a 409, not a KeyError.
    needs = occupancy(SESSION, instants(SESSION, BASE), devices=0, **IDS)
    assigned, blocking = conflicts(needs, [])
    assert len(assigned) < len(needs)
    with pytest.raises(SlotUnavailable) as caught:
        raise_if_blocked(blocking)
    assert [c["resource"] for c in caught.value.facts["conflicts"]] == ["device"]


@FAST
@given(st.integers(2, 4), st.lists(st.tuples(st.integers(1, 5), st.integers(-30, 60), st.integers(1, 40)), max_size=8))
def test_a_pooled_need_takes_the_lowest_free_unit_or_lists_every_overlapping_unit_claim(capacity, raw):
    busy = [
        Busy(f"numbing:cln_x#{unit}", m(start), m(start + length), appointment_id=f"apt_{i}")
        for i, (unit, start, length) in enumerate(raw)
    ]
    need = Need("numbing:cln_x", m(0), m(30), capacity)
    taken = {int(b.resource.split("#")[1]) for b in busy if b.starts_at < need.ends_at and need.starts_at < b.ends_at}
    free = [unit for unit in range(1, capacity + 1) if unit not in taken]
    assigned, blocking = conflicts([need], busy)
    # Every unit in use counts, also one above the capacity (left by a lowered capacity).
    if free and len(taken) < capacity:
        assert list(assigned.values()) == [f"numbing:cln_x#{free[0]}"] and blocking == []
    else:
        assert assigned == {}
        assert sorted(blocking, key=repr) == sorted(
            (b for b in busy if b.starts_at < need.ends_at and need.starts_at < b.ends_at), key=repr
        )


def test_a_lowered_pool_capacity_still_counts_units_numbered_above_it():
    """Three chairs in use, capacity lowered to three from four: chair #4's claim still counts."""
    busy = [Busy(f"numbing:cln_x#{unit}", m(0), m(30), appointment_id=f"apt_{unit}") for unit in (1, 2, 4)]
    assigned, blocking = conflicts([Need("numbing:cln_x", m(10), m(20), capacity=3)], busy)
    assert assigned == {} and len(blocking) == 3


# --- device units when a clinic's count changes (booking/services/devices.py)

uses_strategy = st.lists(st.tuples(st.integers(0, 600), st.integers(1, 120)), max_size=12).map(
    lambda spans: [(f"u{i}", m(start), m(start + length)) for i, (start, length) in enumerate(spans)]
)


def most_at_once(uses) -> int:
    return max((sum(1 for _, s, e in uses if s <= start < e) for _, start, _ in uses), default=0)


@FAST
@given(uses_strategy, st.integers(0, 4))
def test_units_are_assigned_exactly_when_no_more_than_capacity_overlap(uses, capacity):
    units, clashes = assign_units(uses, capacity)
    spans = {k: (s, e) for k, s, e in uses}
    assert all(1 <= n <= capacity for n in units.values())
    for a in units:
        for b in units:
            if a < b and units[a] == units[b]:
                assert spans[a][1] <= spans[b][0] or spans[b][1] <= spans[a][0], (a, b)
    assert (clashes == []) == (most_at_once(uses) <= capacity)
    assert set(units) | {clash[-1] for clash in clashes} == set(spans)
    for clash in clashes:  # each names uses that all run at the start of the one left out
        start = spans[clash[-1]][0]
        assert len(clash) == capacity + 1 and all(spans[k][0] <= start < spans[k][1] for k in clash)


def test_a_needling_may_take_the_unit_another_just_left():
    units, clashes = assign_units([("a", m(0), m(30)), ("b", m(30), m(60))], 1)
    assert (units, clashes) == ({"a": 1, "b": 1}, [])


# --- a session recorded after the fact against the booked ones (rule 5)


def test_a_recorded_session_inside_a_booked_interval_names_the_booking_and_where_it_could_move():
    booked = [Booked(d(10), 28, appointment_id="appt_1"), Booked(d(60), 28, hold_id="hold_1")]
    with pytest.raises(IntervalTooShort) as refusal:
        check_recorded_session(d(-5), booked, [s(10), s(60)])
    assert refusal.value.facts["conflicts"] == [
        {"appointment_id": "appt_1", "starts_at": d(10), "earliest_start": midnight(23)}
    ]
    assert refusal.value.facts["earliest_start"] == midnight(23)


def test_a_recorded_session_clear_of_every_booking_passes_and_only_its_own_minimum_counts():
    check_recorded_session(d(-18), [Booked(d(10), 28, appointment_id="a")], [s(10)])
    check_recorded_session(d(-5), [Booked(d(10), 14, appointment_id="a")], [s(10)])
    check_recorded_session(d(-5), [Booked(d(10), None, appointment_id="a")], [s(10)])
