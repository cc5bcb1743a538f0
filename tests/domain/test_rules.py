"""The domain rules of booking/ as plain functions: no app, no database.

DST facts used below (2026): Europe/London goes GMT->BST on Sunday 29 March at
01:00 local and back on Sunday 25 October; America/New_York goes EST->EDT on
Sunday 8 March at 02:00 local and back on Sunday 1 November.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.courses import course_defaults
from booking.domain.errors import InvalidInput
from booking.domain.treatments import INTERVAL_FIELDS, LIMITS, check_kind_unchanged, check_treatment_type, defaults_for
from booking.domain.vocabulary import INDICATIONS, KINDS
from booking.domain.weekly import (
    Shift,
    check_hours_at_own_clinics,
    check_no_stranded_hours,
    check_timezone,
    check_week,
    expand,
    format_hhmm,
    local_instant,
    overlapping_shifts,
    parse_hhmm,
)

UTC = UTC
LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
MONDAY = 0
FAST = settings(max_examples=200, deadline=None)


def hm(text: str) -> int:
    return parse_hhmm(text, allow_end_of_day=True)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- HH:MM ---------------------------------------------------------------------------------


@FAST
@given(st.integers(0, 24 * 60 - 1))
def test_every_minute_of_the_day_round_trips_through_hhmm(minute):
    text = format_hhmm(minute)
    assert len(text) == 5
    assert parse_hhmm(text) == minute
    assert parse_hhmm(text, allow_end_of_day=True) == minute


@FAST
@given(
    st.one_of(
        st.text(alphabet="0123456789:\n ", max_size=7),
        st.from_regex(r"\A[0-2]\d:[0-6]\d\s?\Z"),
        st.text(max_size=6),
    )
)
def test_parse_hhmm_accepts_only_the_canonical_spelling(text):
    try:
        minute = parse_hhmm(text, allow_end_of_day=True)
    except ValueError:
        return
    assert format_hhmm(minute) == text


def test_end_of_day_is_24_00_only_when_allowed():
    assert parse_hhmm("24:00", allow_end_of_day=True) == 1440
    assert format_hhmm(1440) == "24:00"
    with pytest.raises(ValueError):
        parse_hhmm("24:00")


@pytest.mark.parametrize(
    "text", ["9:00", "24:01", "12:60", "", "noon", "09:00\n", "09:5", "0900", " 09:00", "09:0\u0665", "+9:00"]
)
@pytest.mark.parametrize("end_of_day", [False, True])
def test_malformed_times_are_refused(text, end_of_day):
    with pytest.raises(ValueError):
        parse_hhmm(text, allow_end_of_day=end_of_day)


# --- time zones ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Europe/London", "America/New_York", "Asia/Kolkata", "UTC"])
def test_iana_zone_names_are_accepted(name):
    assert check_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["EST", "Mars/Base", "+01:00", "", "GMT", "europe/london", "Europe/London "])
def test_abbreviations_offsets_and_unknown_zones_are_refused(name):
    with pytest.raises(ValueError):
        check_timezone(name)


# --- weekly shifts: one zone ---------------------------------------------------------------


def _minutes(shift: Shift) -> set[int]:
    return set(range(shift.start, shift.end))


@st.composite
def shifts_in(draw, zones, weekdays=3, max_size=6):
    """Well-formed weekly shifts; few weekdays so that clashes are common."""
    result = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(st.integers(0, 1439))
        end = draw(st.integers(start + 1, 1440))
        result.append(
            Shift(draw(st.integers(0, weekdays - 1)), start, end, f"c{len(result)}", draw(st.sampled_from(zones)))
        )
    return result


def _same_day_clashes(shifts: list[Shift]) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, a in enumerate(shifts)
        for j, b in enumerate(shifts)
        if i < j and a.weekday == b.weekday and _minutes(a) & _minutes(b)
    }


@FAST
@given(shifts_in(["Europe/London"]))
def test_check_week_refuses_exactly_when_two_shifts_share_a_minute_of_a_weekday(shifts):
    clashes = _same_day_clashes(shifts)
    assert {(i, j) for i, j, _ in overlapping_shifts(shifts, today=date(2026, 1, 5))} == clashes
    if clashes:
        with pytest.raises(InvalidInput) as caught:
            check_week(shifts)
        assert set(caught.value.errors) == {str(j) for _, j in clashes}
    else:
        assert check_week(shifts) == shifts


@FAST
@given(shifts_in(["UTC", "Etc/UTC"]))
def test_two_names_of_the_same_zone_clash_exactly_like_one_zone(shifts):
    # Two zone names take the instant-based path; it must agree with the wall-clock one.
    found = {(i, j) for i, j, _ in overlapping_shifts(shifts, today=date(2026, 1, 5))}
    assert found == _same_day_clashes(shifts)


FIXED_OFFSETS = {"UTC": 0, "Etc/GMT-1": 60, "Etc/GMT+5": -300, "Asia/Kolkata": 330}


@FAST
@given(shifts_in(list(FIXED_OFFSETS), weekdays=7, max_size=5))
def test_shifts_in_fixed_offset_zones_clash_exactly_when_their_utc_minutes_meet(shifts):
    def week_minutes(s: Shift) -> set[int]:
        return {(s.weekday * 1440 + m - FIXED_OFFSETS[s.zone]) % (7 * 1440) for m in _minutes(s)}

    expected = {
        (i, j)
        for i, a in enumerate(shifts)
        for j, b in enumerate(shifts)
        if i < j and week_minutes(a) & week_minutes(b)
    }
    assert {(i, j) for i, j, _ in overlapping_shifts(shifts, today=date(2026, 2, 4))} == expected


def test_touching_shifts_do_not_overlap():
    shifts = [Shift(MONDAY, hm("09:00"), hm("12:00")), Shift(MONDAY, hm("12:00"), hm("17:00"))]
    assert check_week(shifts) == shifts


def test_a_shift_ending_at_midnight_does_not_touch_the_next_day():
    shifts = [Shift(MONDAY, hm("20:00"), hm("24:00")), Shift(1, hm("00:00"), hm("08:00"))]
    assert check_week(shifts) == shifts


def test_same_hours_on_different_weekdays_do_not_overlap():
    assert check_week([Shift(0, 540, 1020), Shift(1, 540, 1020)])


def test_overlap_error_names_the_clashing_entry_and_its_place():
    shifts = [Shift(MONDAY, hm("09:00"), hm("12:00"), "clinic-a"), Shift(MONDAY, hm("11:59"), hm("13:00"), "clinic-b")]
    with pytest.raises(InvalidInput) as caught:
        check_week(shifts)
    assert set(caught.value.errors) == {"1"}
    (message,) = caught.value.errors["1"]["start"]
    assert "entry 0" in message and "Monday 09:00-12:00" in message and "clinic-a" in message


@pytest.mark.parametrize(
    "shift, field",
    [
        (Shift(7, 540, 600), "weekday"),
        (Shift(-1, 540, 600), "weekday"),
        (Shift(MONDAY, 600, 600), "end"),
        (Shift(MONDAY, 600, 540), "end"),
    ],
)
def test_malformed_shifts_are_refused_by_field(shift, field):
    with pytest.raises(InvalidInput) as caught:
        check_week([Shift(MONDAY, 0, 60), shift])
    assert {k: set(v) for k, v in caught.value.errors.items()} == {"1": {field}}


# --- weekly shifts: across zones -----------------------------------------------------------


def _pair(london: str, new_york: str) -> list[Shift]:
    ls, le = london.split("-")
    ns, ne = new_york.split("-")
    return [
        Shift(MONDAY, hm(ls), hm(le), "london", "Europe/London"),
        Shift(MONDAY, hm(ns), hm(ne), "new-york", "America/New_York"),
    ]


def test_london_afternoon_is_new_york_morning():
    with pytest.raises(InvalidInput) as caught:
        check_week(_pair("14:00-18:00", "09:00-12:00"))
    assert set(caught.value.errors) == {"1"}
    assert "london" in caught.value.errors["1"]["start"][0]


def test_london_morning_until_13_never_meets_new_york_morning():
    # In the weeks between the two DST changes London 13:00 GMT touches New York 09:00 EDT.
    assert check_week(_pair("09:00-13:00", "09:00-12:00"))
    assert list(overlapping_shifts(_pair("09:00-13:00", "09:00-12:00"), today=date(2026, 3, 1))) == []


def test_london_until_14_meets_new_york_9_only_between_the_dst_changes():
    shifts = _pair("09:00-14:00", "09:00-10:00")
    # From January, the first clash is the Monday after the US spring change ...
    assert list(overlapping_shifts(shifts, today=date(2026, 1, 5))) == [(0, 1, date(2026, 3, 9))]
    # ... from April (both zones on summer time), it is the Monday after the EU autumn change.
    assert list(overlapping_shifts(shifts, today=date(2026, 4, 6))) == [(0, 1, date(2026, 10, 26))]
    with pytest.raises(InvalidInput):
        check_week(shifts)


def test_a_clash_is_dated_in_the_local_calendar_of_the_first_entry():
    # Kolkata Tuesday 01:00-03:00 is Monday 19:30-21:30 UTC.
    kolkata = Shift(1, hm("01:00"), hm("03:00"), "kolkata", "Asia/Kolkata")
    utc_evening = Shift(MONDAY, hm("20:00"), hm("22:00"), "utc", "UTC")
    monday = date(2026, 1, 5)
    assert list(overlapping_shifts([kolkata, utc_evening], today=monday)) == [(0, 1, date(2026, 1, 6))]
    assert list(overlapping_shifts([utc_evening, kolkata], today=monday)) == [(0, 1, date(2026, 1, 5))]
    same_zone = [Shift(2, 540, 600), Shift(2, 570, 630)]
    assert list(overlapping_shifts(same_zone, today=monday)) == [(0, 1, date(2026, 1, 7))]


def test_the_clashing_mondays_of_2026_are_exactly_the_dst_gap_weeks():
    london, new_york = _pair("09:00-14:00", "09:00-10:00")
    first, last = date(2026, 1, 1), date(2027, 1, 1)
    clashes = [
        day
        for (day, ls, le), (_, ns, ne) in zip(expand(london, first, last), expand(new_york, first, last), strict=True)
        if ls < ne and ns < le
    ]
    assert clashes == [date(2026, 3, 9), date(2026, 3, 16), date(2026, 3, 23), date(2026, 10, 26)]


# --- expansion to instants across DST ------------------------------------------------------

NINE_TO_FIVE = {"start": hm("09:00"), "end": hm("17:00")}


@pytest.mark.parametrize(
    "zone, before, after, utc_nine_before, utc_nine_after",
    [
        ("Europe/London", date(2026, 3, 23), date(2026, 3, 30), 9, 8),  # GMT -> BST
        ("Europe/London", date(2026, 10, 19), date(2026, 10, 26), 8, 9),  # BST -> GMT
        ("America/New_York", date(2026, 3, 2), date(2026, 3, 9), 14, 13),  # EST -> EDT
        ("America/New_York", date(2026, 10, 26), date(2026, 11, 2), 13, 14),  # EDT -> EST
    ],
)
def test_a_monday_nine_to_five_stays_local_across_a_dst_change(zone, before, after, utc_nine_before, utc_nine_after):
    shift = Shift(MONDAY, zone=zone, **NINE_TO_FIVE)
    weeks = list(expand(shift, before, after + timedelta(days=1)))
    assert [day for day, _, _ in weeks] == [before, after]
    for day, start, end in weeks:
        assert start.tzinfo is not None and start.utcoffset() == timedelta(0)
        assert start.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == datetime(day.year, day.month, day.day, 9)
        assert end.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == datetime(day.year, day.month, day.day, 17)
        assert end - start == timedelta(hours=8)
    assert [start.hour for _, start, _ in weeks] == [utc_nine_before, utc_nine_after]
    assert [end.hour for _, _, end in weeks] == [utc_nine_before + 8, utc_nine_after + 8]


def test_expand_yields_each_weekday_in_the_half_open_range():
    shift = Shift(MONDAY, 540, 1020, zone="UTC")
    assert [d for d, _, _ in expand(shift, date(2026, 3, 3), date(2026, 3, 23))] == [
        date(2026, 3, 9),
        date(2026, 3, 16),
    ]
    assert [d for d, _, _ in expand(shift, date(2026, 3, 9), date(2026, 3, 10))] == [date(2026, 3, 9)]


def test_a_time_skipped_by_spring_forward_resolves_with_the_offset_before_the_change():
    # New York skips 02:00-03:00 on 8 March: 02:30 is read as EST, i.e. 03:30 EDT.
    skipped = local_instant(date(2026, 3, 8), hm("02:30"), NEW_YORK)
    assert skipped == utc(2026, 3, 8, 7, 30)
    assert skipped.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:30 EDT"
    # London skips 01:00-02:00 on 29 March: 01:30 is read as GMT, i.e. 02:30 BST, the same
    # instant as 02:30 (which exists) that day.
    assert local_instant(date(2026, 3, 29), hm("01:30"), LONDON) == utc(2026, 3, 29, 1, 30)
    assert local_instant(date(2026, 3, 29), hm("02:30"), LONDON) == utc(2026, 3, 29, 1, 30)


def test_a_time_repeated_by_fall_back_is_its_first_occurrence():
    assert local_instant(date(2026, 11, 1), hm("01:30"), NEW_YORK) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert local_instant(date(2026, 10, 25), hm("01:30"), LONDON) == utc(2026, 10, 25, 0, 30)  # 01:30 BST


@pytest.mark.parametrize("zone", [LONDON, NEW_YORK, ZoneInfo("UTC")])
@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 3, 28), date(2026, 10, 24), date(2026, 12, 31)])
def test_24_00_is_the_next_midnight(zone, day):
    assert local_instant(day, hm("24:00"), zone) == local_instant(day + timedelta(days=1), 0, zone)
    assert local_instant(day, hm("24:00"), zone).astimezone(zone).time().isoformat() == "00:00:00"


def test_a_whole_day_lasts_23_or_25_hours_on_change_days():
    def length(day, zone):
        return local_instant(day, 1440, zone) - local_instant(day, 0, zone)

    assert length(date(2026, 3, 29), LONDON) == timedelta(hours=23)
    assert length(date(2026, 10, 25), LONDON) == timedelta(hours=25)
    assert length(date(2026, 3, 8), NEW_YORK) == timedelta(hours=23)
    assert length(date(2026, 11, 1), NEW_YORK) == timedelta(hours=25)
    assert length(date(2026, 3, 30), LONDON) == timedelta(hours=24)


# --- treatment types -----------------------------------------------------------------------


def treatment(kind: str, **overrides) -> dict:
    return {**defaults_for(kind), "kind": kind, **overrides}


def refused_fields(values: dict) -> set[str]:
    with pytest.raises(InvalidInput) as caught:
        check_treatment_type(values)
    return set(caught.value.errors)


@pytest.mark.parametrize("kind", KINDS)
def test_the_defaults_of_each_kind_are_valid(kind):
    values = treatment(kind)
    assert check_treatment_type(values) == values


def test_microneedling_defaults_follow_the_rules():
    values = defaults_for("microneedling")
    assert (
        values["numbing_minutes"],
        values["prep_minutes"],
        values["min_interval_days"],
        values["recommended_interval_days"],
        values["consultation_valid_days"],
    ) == (30, 5, 28, 42, 180)
    assert "hands" not in values["allowed_areas"] and "underarms" not in values["allowed_areas"]
    assert defaults_for("review")["procedure_minutes"] == 15
    assert all(defaults_for("review")[f] is None for f in INTERVAL_FIELDS)


BOUNDS = [
    pytest.param(kind, field, low, high, id=f"{kind}-{field}")
    for kind, fields in LIMITS.items()
    for field, (_, low, high) in fields.items()
]


def _with(kind: str, field: str, value: int) -> dict:
    values = treatment(kind, **{field: value})
    if field == "min_interval_days" and value > values["recommended_interval_days"]:
        values["recommended_interval_days"] = value  # keep the window valid
    return values


@pytest.mark.parametrize("kind, field, low, high", BOUNDS)
def test_each_bound_is_accepted(kind, field, low, high):
    for value in (low, high):
        assert check_treatment_type(_with(kind, field, value))[field] == value


@pytest.mark.parametrize("kind, field, low, high", BOUNDS)
def test_one_beyond_each_bound_is_refused(kind, field, low, high):
    assert refused_fields(treatment(kind, **{field: low - 1})) == {field}
    assert refused_fields(treatment(kind, **{field: high + 1})) == {field}
    assert refused_fields(treatment(kind, **{field: None})) == {field}


def test_prep_not_shorter_than_numbing_is_refused():
    # The ranges (prep <= 15, numbing >= 20) already make prep >= numbing impossible.
    assert refused_fields(treatment("microneedling", prep_minutes=15, numbing_minutes=15)) == {"numbing_minutes"}
    assert check_treatment_type(treatment("microneedling", prep_minutes=15, numbing_minutes=20))


def test_recommended_interval_below_the_minimum_is_refused():
    assert refused_fields(treatment("microneedling", min_interval_days=35, recommended_interval_days=30)) == {
        "recommended_interval_days"
    }
    assert check_treatment_type(treatment("microneedling", min_interval_days=35, recommended_interval_days=35))


@pytest.mark.parametrize("kind", ["consultation", "review"])
@pytest.mark.parametrize("field", INTERVAL_FIELDS)
def test_interval_fields_must_stay_null_outside_microneedling(kind, field):
    assert refused_fields(treatment(kind, **{field: 28})) == {field}


@pytest.mark.parametrize(
    "areas",
    [
        ["face", "hands"],
        ["underarms"],
        ["face", "elbow"],
        ["Face"],
        ["face", "face"],
        [],
    ],
)
def test_bad_area_lists_are_refused(areas):
    assert refused_fields(treatment("microneedling", allowed_areas=areas)) == {"allowed_areas"}


def test_area_errors_say_what_is_wrong():
    with pytest.raises(InvalidInput) as caught:
        check_treatment_type(treatment("microneedling", allowed_areas=["hands", "elbow", "face", "face"]))
    text = " ".join(caught.value.errors["allowed_areas"])
    assert "'hands' is never treated" in text and "'elbow' is not one of" in text and "repeat" in text


def test_forbidden_areas_are_refused_on_any_kind():
    assert refused_fields(treatment("consultation", allowed_areas=["underarms"])) == {"allowed_areas"}


@pytest.mark.parametrize("kind", ["laser", None, "Microneedling"])
def test_unknown_kind_is_refused(kind):
    assert refused_fields({**defaults_for("microneedling"), "kind": kind}) == {"kind"}


def test_every_bad_field_is_reported_at_once():
    assert refused_fields(
        treatment("microneedling", numbing_minutes=5, procedure_minutes=1, allowed_areas=["hands"])
    ) == {
        "numbing_minutes",
        "procedure_minutes",
        "allowed_areas",
    }


# --- courses -------------------------------------------------------------------------------


def course(indication: str, type_cap: int | None = 6, **data) -> dict:
    return course_defaults("microneedling", type_cap, {"treatment_type_id": "tt", "indication": indication, **data})


@pytest.mark.parametrize(
    "indication, cap, per_year",
    [
        ("acne_scars", 4, None),
        ("other_scars", 4, None),
        ("stretch_marks", 6, None),
        ("thermal_burns", 6, None),
        ("ageing", 6, 2),
    ],
)
def test_course_caps_default_from_the_indication(indication, cap, per_year):
    values = course(indication)
    assert (values["max_sessions"], values["max_sessions_per_365_days"]) == (cap, per_year)
    assert values["status"] == "active" and values["treatment_type_id"] == "tt"


def test_every_indication_has_a_rule():
    assert set(INDICATIONS) == {"acne_scars", "other_scars", "stretch_marks", "thermal_burns", "ageing"}


@pytest.mark.parametrize("type_cap, expected", [(3, 3), (4, 4), (5, 5), (20, 6), (None, 6)])
def test_a_lower_type_cap_lowers_the_default(type_cap, expected):
    assert course("stretch_marks", type_cap)["max_sessions"] == expected


def test_an_explicit_cap_is_kept_up_to_the_type_cap():
    assert course("acne_scars", 6, max_sessions=6)["max_sessions"] == 6
    assert course("ageing", 6, max_sessions_per_365_days=None)["max_sessions_per_365_days"] is None


def test_an_explicit_cap_above_the_type_cap_is_refused():
    with pytest.raises(InvalidInput) as caught:
        course("acne_scars", 6, max_sessions=7)
    assert set(caught.value.errors) == {"max_sessions"}


@pytest.mark.parametrize("kind", ["consultation", "review"])
def test_a_course_needs_a_microneedling_type(kind):
    with pytest.raises(InvalidInput) as caught:
        course_defaults(kind, None, {"treatment_type_id": "tt", "indication": "acne_scars"})
    assert set(caught.value.errors) == {"treatment_type_id"}


# --- One home each: the practitioner's zone, claim keys, pool units, cursors ----------------------------


def test_a_practitioner_lives_on_the_one_zone_of_their_clinics_else_utc():
    from booking.domain.weekly import practitioner_zone

    assert practitioner_zone(["Europe/London", "Europe/London"]) == LONDON
    assert practitioner_zone(["Europe/London", "America/New_York"]) == ZoneInfo("UTC")
    assert practitioner_zone([]) == ZoneInfo("UTC")


@FAST
@given(
    kind=st.sampled_from(["practitioner", "room", "patient", "numbing", "device"]),
    object_id=st.from_regex(r"[a-z]{2,5}_[0-9a-z]{26}", fullmatch=True),
    unit=st.none() | st.integers(1, 99),
)
def test_a_claim_key_reads_back_as_what_built_it(kind, object_id, unit):
    from booking.domain.claims import claim_key, parse_claim_key, unit_prefix

    key = claim_key(kind, object_id, unit)
    assert parse_claim_key(key) == (kind, object_id, unit)
    assert parse_claim_key(key).resource == claim_key(kind, object_id)
    assert key.startswith(unit_prefix(claim_key(kind, object_id))) == (unit is not None)


@pytest.mark.parametrize(
    "capacity, used, free",
    [
        (2, set(), "numbing:cln_x#1"),
        (2, {"numbing:cln_x#1"}, "numbing:cln_x#2"),
        (2, {"numbing:cln_x#1", "numbing:cln_x#2"}, None),
        (2, {"numbing:cln_x#3"}, "numbing:cln_x#1"),  # a unit above a lowered capacity still counts
        (2, {"numbing:cln_x#1", "numbing:cln_x#3"}, None),
        (0, set(), None),  # a pool of no units is never free
    ],
)
def test_a_pool_gives_its_first_free_unit_while_fewer_than_its_capacity_are_used(capacity, used, free):
    from booking.domain.claims import free_unit

    assert free_unit("numbing:cln_x", capacity, used) == free


@FAST
@given(key=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80))
def test_a_cursor_gives_back_its_key_and_a_tampered_one_nothing(key):
    from booking.domain.cursors import decode_cursor, encode_cursor

    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == (key if key.isprintable() else None)
    assert decode_cursor(cursor + "!") is None


def test_a_practitioner_cannot_leave_a_clinic_where_they_still_have_hours():
    check_no_stranded_hours({"clinic_a"}, {"clinic_a", "clinic_b"})
    with pytest.raises(InvalidInput) as refused:
        check_no_stranded_hours({"clinic_a", "clinic_c", "clinic_b"}, {"clinic_a"})
    assert refused.value.errors == {
        "clinic_ids": ["Still has working hours at clinic_b, clinic_c; replace the working hours first."]
    }


def test_weekly_hours_are_only_at_the_practitioners_clinics():
    check_hours_at_own_clinics(["clinic_a", "clinic_a"], {"clinic_a"})
    with pytest.raises(InvalidInput) as refused:
        check_hours_at_own_clinics(["clinic_a", "clinic_x"], {"clinic_a"})
    assert refused.value.errors == {"1": {"clinic_id": ["The practitioner does not work at this clinic."]}}


def test_a_treatment_types_kind_never_changes():
    check_kind_unchanged("microneedling", {"name": "Renamed"})
    check_kind_unchanged("microneedling", {"kind": "microneedling"})
    with pytest.raises(InvalidInput) as refused:
        check_kind_unchanged("microneedling", {"kind": "review"})
    assert refused.value.errors == {"kind": ["The kind of a treatment type cannot change; create a new one."]}


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_of_a_treatment_type_but_its_name_and_kind_has_a_default(kind):
    # what a change merges the given fields into (booking/services/treatment_types.py)
    assert {"name", "kind", *defaults_for(kind)} == {
        "name",
        "kind",
        "numbing_minutes",
        "prep_minutes",
        "procedure_minutes",
        "aftercare_minutes",
        "turnover_minutes",
        *INTERVAL_FIELDS,
        "allowed_areas",
        "required_capability",
    }
