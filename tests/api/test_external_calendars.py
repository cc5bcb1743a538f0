"""External busy times: a practitioner's other calendar blocks availability and booking like time off.

The world's practitioner works Monday to Saturday 09:00-17:00 in London (GMT in January).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from api import create_app
from booking.integrations import external_calendars
from migrations import upgrade
from models import ExternalBusy, make_engine, make_sessionmaker, writer
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..booking_world import MONDAY, Clock, build_world
from ..helpers import Caller, assert_problem, make_organization

# Weekly on Tuesdays 10:00-11:00 London, four times from 5 January 2027; the 12th is
# removed (EXDATE) and the 19th moved to 14:00-15:00 (an overridden occurrence).
RECURRING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//Other calendar//EN
BEGIN:VEVENT
UID:weekly-supervision@example.com
DTSTAMP:20261201T000000Z
DTSTART;TZID=Europe/London:20270105T100000
DTEND;TZID=Europe/London:20270105T110000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Europe/London:20270112T100000
SUMMARY:Supervision at the hospital
END:VEVENT
BEGIN:VEVENT
UID:weekly-supervision@example.com
DTSTAMP:20261201T000000Z
RECURRENCE-ID;TZID=Europe/London:20270119T100000
DTSTART;TZID=Europe/London:20270119T140000
DTEND;TZID=Europe/London:20270119T150000
SUMMARY:Supervision (moved)
END:VEVENT
BEGIN:VEVENT
UID:free-lunch@example.com
DTSTAMP:20261201T000000Z
DTSTART;TZID=Europe/London:20270106T120000
DTEND;TZID=Europe/London:20270106T130000
TRANSP:TRANSPARENT
SUMMARY:Lunch (shown as free)
END:VEVENT
BEGIN:VEVENT
UID:cancelled@example.com
DTSTAMP:20261201T000000Z
DTSTART;TZID=Europe/London:20270107T120000
DTEND;TZID=Europe/London:20270107T130000
STATUS:CANCELLED
SUMMARY:Called off
END:VEVENT
BEGIN:VEVENT
UID:conference@example.com
DTSTAMP:20261201T000000Z
DTSTART;VALUE=DATE:20270108
DTEND;VALUE=DATE:20270109
SUMMARY:Conference (all day)
END:VEVENT
END:VCALENDAR
"""


def review_starts(world, day: str) -> set[str]:
    """The practitioner's review starts on a day (local = UTC in January), as HH:MM."""
    response = world.caller.get(
        "/v1/availability",
        query_string={
            "clinic_id": world.clinic["id"],
            "treatment_type_id": world.review["id"],
            "practitioner_id": world.practitioner["id"],
            "start": f"{day}T00:00:00+00:00",
            "end": f"{day}T23:59:00+00:00",
            "limit": 500,
        },
    )
    assert response.status_code == 200, response.get_json()
    return {s["starts_at"][11:16] for s in response.get_json()["data"]}


def upload(world, ics: str = RECURRING, status: int = 201) -> dict:
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars", json={"name": "Hospital", "ics": ics}
    )
    assert response.status_code == status, response.get_json()
    return response.get_json()


DAYS = ("2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08", "2027-01-12", "2027-01-19", "2027-01-26")


def test_a_recurring_event_with_an_exception_removes_exactly_its_slots(world):
    before = {day: review_starts(world, day) for day in DAYS}
    upload(world)
    after = {day: review_starts(world, day) for day in DAYS}
    removed = {day: sorted(before[day] - after[day]) for day in DAYS}
    hour = ["10:00", "10:15", "10:30", "10:45"]
    assert removed == {
        "2027-01-05": hour,
        "2027-01-06": [],
        "2027-01-07": [],
        "2027-01-08": sorted(before["2027-01-08"]),
        "2027-01-12": [],
        "2027-01-19": ["14:00", "14:15", "14:30", "14:45"],
        "2027-01-26": hour,
    }
    assert all(after[day] <= before[day] for day in DAYS)


def test_booking_over_an_occurrence_is_refused_and_over_the_exception_allowed(world):
    upload(world)
    review = {"treatment_type_id": world.review["id"]}
    refused = world.caller.post("/v1/appointments", json=world.slot(starts_at="2027-01-05T10:15:00+00:00", **review))
    assert_problem(refused, 422, "outside_working_hours")
    moved = world.caller.post("/v1/appointments", json=world.slot(starts_at="2027-01-19T14:30:00+00:00", **review))
    assert_problem(moved, 422, "outside_working_hours")
    world.book(starts_at="2027-01-12T10:15:00+00:00", **review)  # EXDATE: free
    world.book(starts_at="2027-01-19T10:15:00+00:00", **review)  # the moved occurrence's old time: free


def test_removing_the_calendar_frees_the_time(world):
    row = upload(world)
    assert "10:00" not in review_starts(world, "2027-01-05")
    assert world.caller.delete(f"/v1/external-calendars/{row['id']}").status_code == 204
    assert "10:00" in review_starts(world, "2027-01-05")


def test_a_file_that_does_not_parse_writes_nothing(world, db):
    assert_problem(
        world.caller.post(
            f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
            json={"name": "Broken", "ics": "BEGIN:VCALENDAR\nthis is not ical"},
        ),
        422,
        "validation_error",
    )
    assert db.scalar(sa.select(sa.func.count()).select_from(ExternalBusy)) == 0
    assert world.caller.get(f"/v1/practitioners/{world.practitioner['id']}/external-calendars").get_json()["data"] == []


def test_url_or_file_not_both(world):
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
        json={"name": "Both", "ics": RECURRING, "url": "https://93.184.215.14/x.ics"},
    )
    assert_problem(response, 422, "validation_error")


class Feed:
    """A calendar server on loopback whose answer the test changes."""

    def __init__(self):
        self.status, self.body, self.hits = 200, RECURRING, 0
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                feed.hits += 1
                payload = feed.body.encode()
                self.send_response(feed.status)
                self.send_header("content-type", "text/calendar")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/calendar.ics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def feed(app, monkeypatch):
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_PRIVATE", True)
    server = Feed()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def refresh(app):
    settings = SchedulerSettings(database_url="unused", webhooks_allow_private=True)
    jobs.register("test-calendars", settings, sessions=app.extensions["db_write_sessions"])

    def run():
        jobs.keep_lease("test-calendars")
        return jobs.refresh_external_calendars("test-calendars")

    return run


def test_a_feed_url_is_fetched_and_refreshed_and_a_failure_keeps_the_last_good_copy(world, feed, refresh):
    created = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars", json={"name": "Hospital", "url": feed.url}
    )
    assert created.status_code == 201, created.get_json()
    row = created.get_json()
    assert row["status"] == "ok" and feed.hits == 1
    assert "10:00" not in review_starts(world, "2027-01-05")

    assert refresh() == 0  # fetched moments ago: not due
    feed.status = 500
    world.clock.advance(minutes=16)
    assert refresh() == 0 and feed.hits == 2
    shown = world.caller.get(f"/v1/external-calendars/{row['id']}").get_json()
    assert shown["status"] == "error" and "500" in shown["last_error"]
    assert "10:00" not in review_starts(world, "2027-01-05")  # the last good copy still blocks

    feed.status, feed.body = (
        200,
        RECURRING.replace("20270105T100000", "20270105T090000", 1).replace(
            "DTEND;TZID=Europe/London:20270105T110000", "DTEND;TZID=Europe/London:20270105T093000", 1
        ),
    )
    world.clock.advance(minutes=16)
    assert refresh() == 1
    starts = review_starts(world, "2027-01-05")
    assert "10:00" in starts and "09:00" not in starts and "09:30" in starts
    assert world.caller.get(f"/v1/external-calendars/{row['id']}").get_json()["status"] == "ok"


def test_a_private_feed_url_is_refused_by_default(world):
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
        json={"name": "Intranet", "url": "http://10.0.0.7/calendar.ics"},
    )
    assert_problem(response, 422, "validation_error")


def test_busy_times_are_expanded_ahead_in_utc(world, db):
    upload(world)
    rows = db.execute(sa.select(ExternalBusy.starts_at, ExternalBusy.ends_at).order_by(ExternalBusy.starts_at)).all()
    assert [(s.isoformat(), (e - s)) for s, e in rows] == [
        ("2027-01-05T10:00:00+00:00", timedelta(hours=1)),
        ("2027-01-08T00:00:00+00:00", timedelta(days=1)),
        ("2027-01-19T14:00:00+00:00", timedelta(hours=1)),
        ("2027-01-26T10:00:00+00:00", timedelta(hours=1)),
    ]
    assert all(s.utcoffset() == timedelta(0) for s, _ in rows)


# --- Hostile calendars: every expansion is bounded, every ICS problem is a 422 -----------------------------------


def vcalendar(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Hostile//EN", *lines, "END:VCALENDAR", ""])


def event(*lines: str, uid: str = "bomb@example.com") -> list[str]:
    return ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T000000Z", *lines, "END:VEVENT"]


ENDLESS = vcalendar(*event("DTSTART:20270105T100000Z", "DTEND:20270105T100001Z", "RRULE:FREQ=SECONDLY"))


def in_thread(call, seconds: float):
    """call() in a thread; fails the test (instead of hanging it) when it takes longer than `seconds`."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], time.monotonic() - started


def nothing_written(world, db) -> None:
    assert db.scalar(sa.select(sa.func.count()).select_from(ExternalBusy)) == 0
    assert world.caller.get(f"/v1/practitioners/{world.practitioner['id']}/external-calendars").get_json()["data"] == []


def test_an_endless_rule_is_refused_naming_the_time_bound_within_seconds(world, db):
    response, took = in_thread(
        lambda: world.caller.post(
            f"/v1/practitioners/{world.practitioner['id']}/external-calendars", json={"name": "Bomb", "ics": ENDLESS}
        ),
        20,
    )
    assert_problem(response, 422, "validation_error")
    assert f"{external_calendars.EXPANSION_SECONDS:g} s" in response.get_json()["errors"]["ics"][0]
    assert took < external_calendars.EXPANSION_SECONDS + 5
    nothing_written(world, db)


@pytest.mark.parametrize("marking", ["TRANSP:TRANSPARENT", "STATUS:CANCELLED", "ZERO-LENGTH"])
def test_free_cancelled_and_zero_length_occurrences_count_against_the_bound(world, db, monkeypatch, marking):
    monkeypatch.setattr(external_calendars, "MAX_OCCURRENCES", 300)
    end = "DTEND:20270105T100000Z" if marking == "ZERO-LENGTH" else "DTEND:20270105T103000Z"
    lines = ["DTSTART:20270105T100000Z", end, "RRULE:FREQ=HOURLY"] + ([] if marking == "ZERO-LENGTH" else [marking])
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
        json={"name": "Many", "ics": vcalendar(*event(*lines))},
    )
    assert_problem(response, 422, "validation_error")
    assert "more than 300 occurrences" in response.get_json()["errors"]["ics"][0]
    nothing_written(world, db)


NESTED = "\r\n".join(
    ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:x"]
    + ["BEGIN:VEVENT", "BEGIN:X-DEEP"] * 3000
    + ["END:X-DEEP", "END:VEVENT"] * 3000
    + ["END:VCALENDAR", ""]
)
MALFORMED = {
    "no DTSTART": vcalendar(*event("DTEND:20270105T110000Z", "RRULE:FREQ=WEEKLY")),
    "DTEND in 9999": vcalendar(*event("DTSTART:20270105T100000Z", "DTEND:99991231T235959Z")),
    "bad BYDAY": vcalendar(*event("DTSTART:20270105T100000Z", "DTEND:20270105T110000Z", "RRULE:FREQ=WEEKLY;BYDAY=XX")),
    "bad FREQ": vcalendar(*event("DTSTART:20270105T100000Z", "DTEND:20270105T110000Z", "RRULE:FREQ=SOMETIMES")),
    "bad DURATION": vcalendar(*event("DTSTART:20270105T100000Z", "DURATION:PXYZ")),
    "deeply nested components": NESTED,
}


@pytest.mark.parametrize("problem", list(MALFORMED))
def test_a_malformed_file_is_a_422_naming_the_ics_and_writes_nothing(world, db, problem):
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
        json={"name": "Broken", "ics": MALFORMED[problem]},
    )
    assert_problem(response, 422, "validation_error")
    assert list(response.get_json()["errors"]) == ["ics"]
    nothing_written(world, db)


@pytest.mark.parametrize("problem", ["bad BYDAY", "deeply nested components"])
def test_a_malformed_feed_given_at_creation_is_a_422_naming_the_url_and_writes_nothing(world, db, feed, problem):
    feed.body = MALFORMED[problem]
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
        json={"name": "Broken feed", "url": feed.url},
    )
    assert_problem(response, 422, "validation_error")
    assert list(response.get_json()["errors"]) == ["url"]
    nothing_written(world, db)


def test_a_malformed_new_version_of_a_file_is_a_422_and_keeps_the_old_one(world):
    row = upload(world)
    response = world.caller.patch(f"/v1/external-calendars/{row['id']}", json={"ics": MALFORMED["bad BYDAY"]})
    assert_problem(response, 422, "validation_error")
    assert "10:00" not in review_starts(world, "2027-01-05")


def test_an_endless_feed_given_at_creation_is_a_422_naming_the_bound(world, db, feed):
    feed.body = ENDLESS
    response, _ = in_thread(
        lambda: world.caller.post(
            f"/v1/practitioners/{world.practitioner['id']}/external-calendars", json={"name": "Bomb", "url": feed.url}
        ),
        20,
    )
    assert_problem(response, 422, "validation_error")
    assert f"{external_calendars.EXPANSION_SECONDS:g} s" in response.get_json()["errors"]["url"][0]
    nothing_written(world, db)


def test_a_feed_that_turns_into_a_bomb_is_an_error_on_refresh_and_the_last_good_copy_stays(world, db, feed, refresh):
    created = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/external-calendars", json={"name": "Hospital", "url": feed.url}
    ).get_json()
    busy_before = db.scalar(sa.select(sa.func.count()).select_from(ExternalBusy))
    feed.body = ENDLESS
    world.clock.advance(minutes=16)
    refreshed, took = in_thread(refresh, 20)
    assert refreshed == 0 and took < external_calendars.EXPANSION_SECONDS + 5
    shown = world.caller.get(f"/v1/external-calendars/{created['id']}").get_json()
    assert shown["status"] == "error" and f"{external_calendars.EXPANSION_SECONDS:g} s" in shown["last_error"]
    assert db.scalar(sa.select(sa.func.count()).select_from(ExternalBusy)) == busy_before == 4
    assert "10:00" not in review_starts(world, "2027-01-05")


def test_a_file_that_starts_past_the_horizon_is_bounded_when_the_scheduler_rolls_it_on(world, db, refresh):
    first = (world.clock.now + external_calendars.HORIZON + timedelta(days=2)).strftime("%Y%m%dT%H%M%SZ")
    later = vcalendar(*event(f"DTSTART:{first}", f"DTEND:{first}", "RRULE:FREQ=SECONDLY"))
    row = upload(world, later)  # nothing falls in the window yet
    assert row["status"] == "ok"
    world.clock.advance(days=31)  # the horizon now reaches the bomb
    refreshed, took = in_thread(refresh, 20)
    assert refreshed == 0 and took < external_calendars.EXPANSION_SECONDS + 5
    shown = world.caller.get(f"/v1/external-calendars/{row['id']}").get_json()
    assert shown["status"] == "error" and f"{external_calendars.EXPANSION_SECONDS:g} s" in shown["last_error"]
    assert db.scalar(sa.select(sa.func.count()).select_from(ExternalBusy)) == 0
    world.clock.advance(minutes=1)
    _, took = in_thread(refresh, 20)
    assert took < 1  # not expanded again on every run: it waits like a failing URL


# --- No transaction is open while a feed is fetched or a calendar expanded -------------------------------------


@pytest.fixture
def on_file(tmp_path):
    """An app on a SQLite file of its own, so the write lock is real (the other tests share one connection)."""
    url = f"sqlite:///{tmp_path / 'calendars.sqlite3'}"
    upgrade(url)
    app = create_app(
        {"DATABASE_URL": url, "TESTING": True, "RATE_LIMIT_ENABLED": False, "WEBHOOKS_ALLOW_PRIVATE": True}
    )
    probe = sa.create_engine(url, connect_args={"timeout": 1})  # gives up on the write lock after 1 s
    yield app, url, probe
    probe.dispose()
    app.extensions["db_engine"].dispose()


def other_writer_can_write(probe) -> bool:
    """Whether a write from outside the app (the scheduler's lease row) gets the SQLite write lock now."""
    try:
        with probe.begin() as connection:
            connection.execute(sa.text("UPDATE scheduler_leases SET holder = holder"))
            connection.execute(sa.text("UPDATE organizations SET name = name"))
        return True
    except sa.exc.OperationalError:  # database is locked
        return False


class StallingFeed(Feed):
    """Answers only once the test lets it (or after 10 s): a feed that trickles or hangs."""

    def __init__(self):
        self.asked, self.release = threading.Event(), threading.Event()
        super().__init__()
        feed, handler = self, self.server.RequestHandlerClass

        class Stalling(handler):
            def do_GET(self):
                feed.asked.set()
                feed.release.wait(10)
                super().do_GET()

        self.server.RequestHandlerClass = Stalling


def test_a_stalling_feed_at_creation_does_not_hold_up_another_organizations_writes(on_file):
    app, _, probe = on_file
    world = build_world(make_organization(app, app.test_client(), "Slow feed"), Clock(MONDAY))
    rival = make_organization(app, app.test_client(), "Rival")
    feed = StallingFeed()
    try:
        caller = Caller(app, app.test_client(), world.caller.token, world.caller.organization_id)
        posting = threading.Thread(
            target=lambda: feed.__dict__.setdefault(
                "answer",
                caller.post(
                    f"/v1/practitioners/{world.practitioner['id']}/external-calendars",
                    json={"name": "Hospital", "url": feed.url},
                ),
            ),
            daemon=True,
        )
        posting.start()
        assert feed.asked.wait(10)
        started = time.monotonic()
        clinic = rival.client.post(
            "/v1/clinics",
            headers={"Authorization": f"Bearer {rival.token}"},
            json={"name": "Elsewhere", "timezone": "Europe/Paris", "opening_hours": []},
        )
        took = time.monotonic() - started
        assert other_writer_can_write(probe)
        feed.release.set()
        posting.join(20)
        assert clinic.status_code == 201, clinic.get_json()
        assert took < 2, f"the rival's write waited {took:.1f} s for the feed"
        assert feed.answer.status_code == 201, feed.answer.get_json()
        assert feed.answer.get_json()["status"] == "ok"
    finally:
        feed.release.set()
        feed.server.shutdown()
        feed.server.server_close()


def test_the_scheduler_expands_with_no_transaction_open(on_file, monkeypatch):
    app, url, probe = on_file
    world = build_world(make_organization(app, app.test_client(), "Rolling"), Clock(MONDAY))
    row = upload(world)
    with probe.begin() as connection:  # due for rolling on
        connection.execute(
            sa.text("UPDATE external_calendars SET expanded_until = :old"), {"old": "2000-01-01 00:00:00.000000"}
        )
    seen = []
    real = external_calendars.occurrences

    def probing(*args):
        seen.append(other_writer_can_write(probe))
        return real(*args)

    monkeypatch.setattr(external_calendars, "occurrences", probing)
    settings = SchedulerSettings(database_url=url, webhooks_allow_private=True)
    engine = make_engine(url)
    try:
        jobs.register("test-expansion", settings, sessions=make_sessionmaker(writer(engine)))
        assert jobs.keep_lease("test-expansion")
        assert jobs.refresh_external_calendars("test-expansion") == 1
    finally:
        engine.dispose()
    assert seen == [True], "the lease row and the write lock must be free while a calendar expands"
    assert world.caller.get(f"/v1/external-calendars/{row['id']}").get_json()["status"] == "ok"


# --- A practitioner's own zone: the one zone of their clinics, else UTC -----------------------------------

# 10:00-11:00 on Tuesday 6 July 2027 with no zone (floating): read in the practitioner's zone.
FLOATING = vcalendar(*event("DTSTART:20270706T100000", "DTEND:20270706T110000", uid="floating@example.com"))


def practitioner_at_second_clinic(world, timezone_name: str) -> None:
    """The world's practitioner (London) also works at a clinic in `timezone_name`, created after London."""
    second = world.caller.make_clinic(name="Second", timezone=timezone_name)
    response = world.caller.patch(
        f"/v1/practitioners/{world.practitioner['id']}", json={"clinic_ids": [world.clinic["id"], second["id"]]}
    )
    assert response.status_code == 200, response.get_json()


def own_times(world, db) -> tuple[str, str]:
    """(the floating event's busy start, as stored in UTC; a time off 09:00-10:00 UTC, as the API shows it)."""
    upload(world, FLOATING)
    busy = db.scalar(sa.select(ExternalBusy.starts_at))
    response = world.caller.post(
        f"/v1/practitioners/{world.practitioner['id']}/time-off",
        json={"starts_at": "2027-07-07T09:00:00+00:00", "ends_at": "2027-07-07T10:00:00+00:00"},
    )
    assert response.status_code == 201, response.get_json()
    return busy.isoformat(), response.get_json()["starts_at"]


def test_a_practitioner_with_clinics_in_two_zones_reads_and_is_shown_their_times_in_utc(world, db):
    # London is on BST in July: the first clinic's zone would read 10:00 as 09:00 UTC.
    practitioner_at_second_clinic(world, "America/New_York")
    assert own_times(world, db) == ("2027-07-06T10:00:00+00:00", "2027-07-07T09:00:00+00:00")


def test_a_practitioner_whose_clinics_share_a_zone_reads_and_is_shown_their_times_in_it(world, db):
    practitioner_at_second_clinic(world, "Europe/London")
    assert own_times(world, db) == ("2027-07-06T09:00:00+00:00", "2027-07-07T10:00:00+01:00")
