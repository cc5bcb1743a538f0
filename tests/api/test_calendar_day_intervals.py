"""Rule 5 and 6 count calendar days between the sessions' local dates (docs/rules.md).

Each session is dated in its own clinic's zone; 28 days means any time on the 28th local
date after the earlier session, whatever a DST change did in between.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..booking_world import build_world
from ..helpers import assert_problem


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
    clock.now = datetime.fromisoformat("2027-02-25T08:00:00+00:00")
    w.consulted(day=40)
    w.book(starts_at="2027-03-02T10:00:00+00:00")
    body = assert_problem(
        w.caller.post("/v1/appointments", json=w.slot(starts_at="2027-03-29T16:00:00+01:00")), 422, "interval_too_short"
    )
    # Midnight of Tue 30 March, BST: 23:00 UTC on the 29th.
    assert body["earliest_start"] == "2027-03-30T00:00:00+01:00"
    assert body["conflicting_starts"] == ["2027-03-02T10:00:00+00:00"]
    assert datetime.fromisoformat(body["earliest_start"]) - datetime.fromisoformat("2027-03-02T10:00:00+00:00") == (
        timedelta(days=27, hours=13)
    )
