"""Rule 5 and 6 count calendar days between the sessions' local dates (docs/rules.md).

Each session is dated in its own clinic's zone; 28 days means any time on the 28th local
date after the earlier session, whatever a DST change did in between. Through the API, on
every path: booking, holds, booking from a hold, reschedule, availability, course caps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

import pytest

from ..booking_world import World, any_time_policy, build_world
from ..helpers import assert_problem

_serial = count(1)
ALL_WEEK = range(7)


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def all_day_clinic(w: World, zone: str) -> dict:
    """A clinic in `zone`, its room and practitioner, open around the clock every day, so that a
    date's first instant can be booked: the slot fields of a booking there."""
    hours = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in ALL_WEEK]
    clinic = w.caller.make_clinic(name=f"Clinic {next(_serial)}", timezone=zone, opening_hours=hours)
    room = w.caller.make_room(clinic["id"], name="Room A")
    practitioner = w.caller.make_practitioner(
        [clinic["id"]],
        name=f"Dr {next(_serial)}",
        treatment_type_ids=[w.consultation["id"], w.microneedling["id"], w.review["id"]],
    )
    ok(
        w.caller.put(
            f"/v1/practitioners/{practitioner['id']}/working-hours",
            json=[{"clinic_id": clinic["id"], **h} for h in hours],
        )
    )
    return {"clinic_id": clinic["id"], "room_id": room["id"], "practitioner_id": practitioner["id"]}


def record(w: World, performed_at: str, treatment_type: dict | None = None, **extra) -> dict:
    return ok(
        w.caller.post(
            f"/v1/patients/{w.patient['id']}/past-sessions",
            json={
                "treatment_type_id": (treatment_type or w.microneedling)["id"],
                "performed_at": performed_at,
                **extra,
            },
        ),
        201,
    )


def start_before(w: World, first: str) -> None:
    """Set the clock three days before `first`, with a consultation the day before that."""
    w.clock.now = instant(first) - timedelta(days=3)
    record(w, (w.clock.now - timedelta(days=1)).isoformat(), w.consultation)


def too_short(response) -> dict:
    return assert_problem(response, 422, "interval_too_short")


# ---------------------------------------------------------------------------- the reported case


def test_same_time_four_weeks_later_books_across_the_spring_change_in_london(admin, clock):
    """Tue 2 Mar 2027 10:00 GMT, then Tue 30 Mar 10:00 BST: 671 hours, but the 28th local date."""
    w = build_world(admin, clock)
    clock.now = datetime.fromisoformat("2027-02-25T08:00:00+00:00")
    w.consulted(day=40)  # 13 Feb 2027
    first = w.book(starts_at="2027-03-02T10:00:00+00:00")
    assert first["starts_at"] == "2027-03-02T10:00:00+00:00"
    second = w.book(starts_at="2027-03-30T10:00:00+01:00")
    assert second["starts_at"] == "2027-03-30T10:00:00+01:00"


def test_the_27th_local_date_is_refused_from_the_28th_dates_first_instant_in_london(admin, clock):
    w = build_world(admin, clock)
    any_time_policy(admin)  # it books at the earliest_start it is told, off the booking policy's grid
    clock.now = datetime.fromisoformat("2027-02-25T08:00:00+00:00")
    w.consulted(day=40)
    w.book(starts_at="2027-03-02T10:00:00+00:00")
    body = too_short(w.caller.post("/v1/appointments", json=w.slot(starts_at="2027-03-29T15:50:00+01:00")))
    # Midnight of Tue 30 March, BST: 23:00 UTC on the 29th, 27 days 13 hours after the session.
    assert body["earliest_start"] == "2027-03-30T00:00:00+01:00"
    assert body["conflicting_starts"] == ["2027-03-02T10:00:00+00:00"]


# ---------------------------------------------------------------------------- three zones, both changes

CHANGES = [
    # zone, the first session (local, with its offset), the 28th local date after it, that date's offset
    ("Europe/London", "2027-03-02T10:00:00+00:00", "2027-03-30", "+01:00"),
    ("Europe/London", "2027-10-05T10:00:00+01:00", "2027-11-02", "+00:00"),
    ("America/New_York", "2027-03-02T10:00:00-05:00", "2027-03-30", "-04:00"),
    ("America/New_York", "2027-10-19T10:00:00-04:00", "2027-11-16", "-05:00"),
    ("Australia/Sydney", "2027-03-16T10:00:00+11:00", "2027-04-13", "+10:00"),  # autumn there
    ("Australia/Sydney", "2027-09-14T10:00:00+10:00", "2027-10-12", "+11:00"),  # spring there
]


@pytest.mark.parametrize("zone, first, day, offset", CHANGES)
def test_the_28th_local_date_books_on_every_path_across_a_dst_change(admin, clock, zone, first, day, offset):
    w = build_world(admin, clock, timezone_name=zone)
    place = all_day_clinic(w, zone)
    start_before(w, first)
    w.book(**place, starts_at=first)
    midnight = f"{day}T00:00:00{offset}"
    eve = instant(midnight) - timedelta(minutes=30)  # the 27th date's last half hour
    for path in ("/v1/appointments", "/v1/holds"):
        body = too_short(w.caller.post(path, json=w.slot(**place, starts_at=eve.isoformat())))
        assert body["earliest_start"] == midnight
    # The 28th date from its first instant: a hold, the appointment from it ...
    held = w.hold(**place, starts_at=midnight)
    booked = ok(w.caller.post("/v1/appointments", json={"hold_id": held["id"]}), 201)
    assert booked["starts_at"] == midnight
    # ... moved to the same wall-clock time as the first session, four weeks on ...
    same_time = f"{day}T{first[11:19]}{offset}"
    moved = ok(w.caller.patch(f"/v1/appointments/{booked['id']}", json={"starts_at": same_time}))
    assert moved["starts_at"] == same_time
    # ... and not to the 27th date.
    body = too_short(w.caller.patch(f"/v1/appointments/{moved['id']}", json={"starts_at": eve.isoformat()}))
    assert body["earliest_start"] == midnight


@pytest.mark.parametrize("zone, first, day, offset", CHANGES)
def test_availability_for_the_patient_offers_exactly_the_starts_from_the_28th_date(
    admin, clock, zone, first, day, offset
):
    w = build_world(admin, clock, timezone_name=zone)
    place = all_day_clinic(w, zone)
    start_before(w, first)
    w.book(**place, starts_at=first)
    window = {
        "treatment_type_id": w.microneedling["id"],
        "clinic_id": place["clinic_id"],
        "start": (instant(f"{day}T00:00:00{offset}") - timedelta(hours=6)).isoformat(),
        "end": (instant(f"{day}T00:00:00{offset}") + timedelta(hours=6)).isoformat(),
        "limit": 500,
    }
    everyone = ok(w.caller.get("/v1/availability", query_string=window))["data"]
    mine = ok(w.caller.get("/v1/availability", query_string={**window, "patient_id": w.patient["id"]}))["data"]
    midnight = instant(f"{day}T00:00:00{offset}")
    assert [s for s in everyone if instant(s["starts_at"]) < midnight]  # the 27th date has free slots ...
    assert mine == [s for s in everyone if instant(s["starts_at"]) >= midnight]  # ... not for this patient
    assert mine[0]["starts_at"] == f"{day}T00:00:00{offset}"
    # Every slot offered can be booked: the first and the last.
    for slot in (mine[-1], mine[0]):
        fields = {k: slot[k] for k in ("clinic_id", "practitioner_id", "room_id", "starts_at")}
        held = w.hold(**fields)
        assert w.caller.delete(f"/v1/holds/{held['id']}").status_code == 204
    # A window wholly on the 27th date: empty, and the reason says from when.
    before = {**window, "end": midnight.isoformat(), "patient_id": w.patient["id"]}
    answer = ok(w.caller.get("/v1/availability", query_string=before))
    assert answer["data"] == []
    assert answer["reason"]["code"] == "interval_too_short"
    assert instant(answer["reason"]["earliest_start"]) == midnight


# ---------------------------------------------------------------------------- two clinics in two zones


def test_sessions_in_two_zones_are_each_dated_in_their_own_clinics_zone(admin, clock):
    """Sydney Tue 2 Mar 09:00 AEDT is Mon 1 Mar in London; counted in its own zone it is the 2nd."""
    w = build_world(admin, clock, timezone_name="Australia/Sydney")
    sydney, london = all_day_clinic(w, "Australia/Sydney"), all_day_clinic(w, "Europe/London")
    start_before(w, "2027-03-02T09:00:00+11:00")
    w.book(**sydney, starts_at="2027-03-02T09:00:00+11:00")
    # Mon 29 March 16:00 BST is already Tuesday 30 March in Sydney, but the 27th date in London.
    body = too_short(w.caller.post("/v1/appointments", json=w.slot(**london, starts_at="2027-03-29T16:00:00+01:00")))
    assert body["earliest_start"] == "2027-03-30T00:00:00+01:00"  # in the later clinic's zone
    assert body["conflicting_starts"] == ["2027-03-01T22:00:00+00:00"]  # the Sydney session, on London time
    # 30 March 00:00 BST is 27 days 14 hours after the Sydney session: the 28th date in London.
    assert w.book(**london, starts_at="2027-03-30T00:00:00+01:00")["clinic_id"] == london["clinic_id"]


def test_a_london_session_at_16_00_counts_from_its_london_date_in_sydney(admin, clock):
    """London Tue 2 Mar 16:00 GMT is Wed 3 Mar 03:00 in Sydney: Sydney's 30 March is still its 28th date."""
    w = build_world(admin, clock)
    london, sydney = all_day_clinic(w, "Europe/London"), all_day_clinic(w, "Australia/Sydney")
    start_before(w, "2027-03-02T16:00:00+00:00")
    w.book(**london, starts_at="2027-03-02T16:00:00+00:00")
    body = too_short(w.caller.post("/v1/appointments", json=w.slot(**sydney, starts_at="2027-03-29T23:00:00+11:00")))
    assert body["earliest_start"] == "2027-03-30T00:00:00+11:00"
    # 27 days 6 hours after the London session.
    booked = w.book(**sydney, starts_at="2027-03-30T09:00:00+11:00")
    assert booked["starts_at"] == "2027-03-30T09:00:00+11:00"


def test_a_past_session_without_a_clinic_is_dated_in_the_booking_clinics_zone(admin, clock):
    """Santiago's 5 September 2027 has no midnight: the clocks jump from 00:00 to 01:00."""
    w = build_world(admin, clock, timezone_name="America/Santiago")
    place = all_day_clinic(w, "America/Santiago")
    clock.now = instant("2027-08-20T12:00:00-04:00")
    record(w, "2027-08-01T12:00:00-04:00", w.consultation)
    record(w, "2027-08-08T23:30:00-04:00")  # Sunday 8 August in Santiago (9 August in UTC)
    body = too_short(w.caller.post("/v1/appointments", json=w.slot(**place, starts_at="2027-09-04T22:00:00-04:00")))
    assert body["earliest_start"] == "2027-09-05T01:00:00-03:00"
    assert w.book(**place, starts_at="2027-09-05T01:00:00-03:00")["starts_at"] == "2027-09-05T01:00:00-03:00"


# ---------------------------------------------------------------------------- rule 6: any 365 days


def test_at_most_two_sessions_in_any_365_calendar_days_across_the_spring_change(admin, clock):
    w = build_world(admin, clock)
    place = all_day_clinic(w, "Europe/London")
    clock.now = instant("2028-03-01T08:00:00+00:00")
    ageing = w.caller.make_course(
        w.patient["id"], w.microneedling["id"], indication="ageing", max_sessions_per_365_days=2
    )
    record(w, "2027-03-27T16:00:00+00:00", course_id=ageing["id"])  # Saturday, GMT
    record(w, "2027-09-01T10:00:00+01:00", course_id=ageing["id"])
    slot = w.slot(**place, course_id=ageing["id"])
    # Saturday 25 March 2028 is the 364th date after the first (2028 is a leap year): refused all day.
    refused = assert_problem(
        w.caller.post("/v1/appointments", json={**slot, "starts_at": "2028-03-25T23:00:00+00:00"}),
        422,
        "course_complete",
    )
    assert refused["max_sessions_per_365_days"] == 2
    # Sunday 26 March, the 365th date, 09:00 BST (the clocks went forward at 01:00): 364 days 16 hours.
    booked = w.book(**place, course_id=ageing["id"], starts_at="2028-03-26T09:00:00+01:00")
    assert booked["course_id"] == ageing["id"]
