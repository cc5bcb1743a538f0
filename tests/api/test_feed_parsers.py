"""Feeds read alike by every common calendar parser.

Python's icalendar and recurring-ical-events, vobject, and on Node ical.js (what most web
calendars use) and node-ical parse the same feed; every appointment's start and end must come
out as the API's instants, across both DST changes of London, New York and Sydney. The
JavaScript parsers are pinned in tests/api/feed_parsers/package.json (`make install-test` installs
them); CI requires them (REQUIRE_NODE_PARSERS=1), elsewhere the test says how to get them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import vobject

from ..booking_world import any_time_policy, build_world

PARSERS = Path(__file__).parent / "feed_parsers"

# Each zone's two changes in 2027, with a weekday on either side (10:00 local each).
DAYS = {
    "Europe/London": ["2027-03-26", "2027-03-29", "2027-10-29", "2027-11-01"],
    "America/New_York": ["2027-03-12", "2027-03-15", "2027-11-05", "2027-11-08"],
    "Australia/Sydney": ["2027-04-02", "2027-04-05", "2027-10-01", "2027-10-04"],
}


def _node_parsers() -> bool:
    if shutil.which("node") and (PARSERS / "node_modules" / "ical.js").is_dir():
        return True
    if os.environ.get("REQUIRE_NODE_PARSERS"):
        pytest.fail("node and tests/api/feed_parsers/node_modules are required here (make install-test)")
    return False


def read_with_every_parser(ics: bytes) -> dict[str, dict[str, tuple[datetime, datetime]]]:
    """{parser: {appointment id: (start, end)}}, every instant aware."""

    def uid(value) -> str:
        return str(value).removesuffix("@needlebook")

    calendar = icalendar.Calendar.from_ical(ics)
    read = {"icalendar": {uid(e["uid"]): (e.decoded("dtstart"), e.decoded("dtend")) for e in calendar.walk("VEVENT")}}
    expanded = recurring_ical_events.of(calendar).between(datetime(2026, 1, 1), datetime(2029, 1, 1))
    read["recurring-ical-events"] = {uid(e["uid"]): (e.decoded("dtstart"), e.decoded("dtend")) for e in expanded}
    parsed = vobject.readOne(ics.decode())
    read["vobject"] = {uid(e.uid.value): (e.dtstart.value, e.dtend.value) for e in parsed.vevent_list}
    if _node_parsers():
        out = subprocess.run(
            ["node", str(PARSERS / "read.mjs")], input=ics, capture_output=True, check=True, timeout=60
        ).stdout
        for parser, events in json.loads(out).items():
            read[parser] = {
                uid(key): tuple(datetime.fromisoformat(value.replace("Z", "+00:00")) for value in span)
                for key, span in events.items()
            }
    return read


@pytest.fixture
def worlds(admin, clock):
    clock.now = datetime(2027, 3, 1, 8, tzinfo=UTC)
    any_time_policy(admin)  # bookings across both changes of the year, up to eight months ahead
    made = {zone: build_world(admin, clock, timezone_name=zone) for zone in DAYS}
    for world in made.values():
        world.consulted(day=50)  # Monday 22 February 2027
    return made


def book_across_the_changes(world, zone: str) -> list[dict]:
    local = [datetime.fromisoformat(f"{day}T10:00").replace(tzinfo=ZoneInfo(zone)) for day in DAYS[zone]]
    return [world.book(treatment_type_id=world.review["id"], starts_at=moment.isoformat()) for moment in local]


def _feed(world, client, owner_type: str, owner_id: str) -> bytes:
    feed = world.caller.create("/v1/calendar-feeds", {"owner_type": owner_type, "owner_id": owner_id, "name": "Phone"})
    response = client.get(feed["url"].removeprefix("http://localhost"))
    assert response.status_code == 200
    return response.data


def test_every_parser_reads_each_appointment_at_the_apis_instants_across_both_changes(worlds, client):
    for zone, world in worlds.items():
        booked = book_across_the_changes(world, zone)
        ics = _feed(world, client, "clinic", world.clinic["id"])
        expected = {
            a["id"]: (datetime.fromisoformat(a["starts_at"]), datetime.fromisoformat(a["ends_at"])) for a in booked
        }
        assert {b["starts_at"][-6:] for b in booked} == {
            "Europe/London": {"+00:00", "+01:00"},
            "America/New_York": {"-05:00", "-04:00"},
            "Australia/Sydney": {"+11:00", "+10:00"},
        }[zone]
        read = read_with_every_parser(ics)
        assert {"icalendar", "recurring-ical-events", "vobject"} <= set(read)
        for parser, events in read.items():
            assert events == expected, f"{parser} reads the {zone} feed otherwise"


def test_a_practitioner_in_two_zones_gets_both_zones_read_right(worlds, client):
    london, sydney = worlds["Europe/London"], worlds["Australia/Sydney"]
    practitioner = london.practitioner
    response = london.caller.patch(
        f"/v1/practitioners/{practitioner['id']}",
        json={"clinic_ids": [london.clinic["id"], sydney.clinic["id"]]},
    )
    assert response.status_code == 200, response.get_json()
    week = [{"clinic_id": london.clinic["id"], "weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
    week += [{"clinic_id": sydney.clinic["id"], "weekday": 5, "start": "09:00", "end": "17:00"}]
    assert london.caller.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=week).status_code == 200
    booked = [
        london.book(treatment_type_id=london.review["id"], starts_at="2027-03-26T10:00:00+00:00"),
        london.book(treatment_type_id=london.review["id"], starts_at="2027-03-29T10:00:00+01:00"),
        london.book(
            treatment_type_id=london.review["id"],
            clinic_id=sydney.clinic["id"],
            room_id=sydney.rooms[0]["id"],
            starts_at="2027-04-03T10:00:00+11:00",
        ),
        london.book(
            treatment_type_id=london.review["id"],
            clinic_id=sydney.clinic["id"],
            room_id=sydney.rooms[0]["id"],
            starts_at="2027-04-10T10:00:00+10:00",
        ),
    ]
    ics = _feed(london, client, "practitioner", practitioner["id"])
    assert sorted(str(tz["tzid"]) for tz in icalendar.Calendar.from_ical(ics).walk("VTIMEZONE")) == [
        "Australia/Sydney",
        "Europe/London",
    ]
    expected = {a["id"]: (datetime.fromisoformat(a["starts_at"]), datetime.fromisoformat(a["ends_at"])) for a in booked}
    for parser, events in read_with_every_parser(ics).items():
        assert events == expected, f"{parser} reads the two-zone feed otherwise"


def test_each_vtimezone_rdate_names_one_date(worlds, client):
    world = worlds["Europe/London"]
    book_across_the_changes(world, "Europe/London")
    ics = _feed(world, client, "clinic", world.clinic["id"]).decode()
    rdates = [line for line in ics.splitlines() if line.startswith("RDATE")]
    assert rdates and all("," not in line for line in rdates)


def test_a_reschedule_names_the_event_it_replaced_and_the_one_that_replaced_it(worlds, client):
    world = worlds["Europe/London"]
    first = world.book(treatment_type_id=world.review["id"], starts_at="2027-03-26T10:00:00+00:00")
    response = world.caller.patch(f"/v1/appointments/{first['id']}", json={"starts_at": "2027-03-29T14:00:00+01:00"})
    assert response.status_code == 200, response.get_json()
    second = response.get_json()
    shown = {
        str(e["uid"]).removesuffix("@needlebook"): e
        for e in icalendar.Calendar.from_ical(_feed(world, client, "clinic", world.clinic["id"])).walk("VEVENT")
    }
    old, new = shown[first["id"]], shown[second["id"]]
    assert str(old["status"]) == "CANCELLED" and str(new["status"]) == "CONFIRMED"
    assert str(old["related-to"]) == f"{second['id']}@needlebook"
    assert str(new["related-to"]) == f"{first['id']}@needlebook"
    assert old["related-to"].params["RELTYPE"] == "SIBLING"
    assert "Rescheduled to Mon 29 Mar 2027 14:00" in str(old["description"])
    assert "Rescheduled from Fri 26 Mar 2027 10:00" in str(new["description"])
