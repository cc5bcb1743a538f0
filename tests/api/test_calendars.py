"""iCalendar feeds: parsed with icalendar and recurring-ical-events and compared with the API's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from ..helpers import assert_problem

LONDON = ZoneInfo("Europe/London")


def issue(caller, owner_type: str, owner_id: str) -> dict:
    return caller.create("/v1/calendar-feeds", {"owner_type": owner_type, "owner_id": owner_id, "name": "Phone"})


def read(client, feed: dict) -> icalendar.Calendar:
    path = feed["url"].removeprefix("http://localhost")
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/calendar"
    return icalendar.Calendar.from_ical(response.data)


def events(calendar: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["uid"]).removesuffix("@needlebook"): e for e in calendar.walk("VEVENT")}


def test_a_practitioners_feed_shows_each_appointment_as_the_api_does(world, client):
    world.consulted()
    session = world.book(starts_at=world.at(2, 10))
    review = world.book(treatment_type_id=world.review["id"], starts_at=world.at(3, 14))
    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    assert feed["token"].startswith("ics_") and feed["token"] in feed["url"]
    shown = events(read(client, feed))
    assert set(shown) == {session["id"], review["id"]}
    for appointment in (session, review):
        event = shown[appointment["id"]]
        assert event.decoded("dtstart") == datetime.fromisoformat(appointment["starts_at"])
        assert event.decoded("dtend") == datetime.fromisoformat(appointment["ends_at"])
        assert str(event["status"]) == "CONFIRMED" and int(event["sequence"]) == 0
        assert event["dtstart"].params["TZID"] == "Europe/London"
    description = str(shown[session["id"]]["description"])
    assert "Numbing: 10:00-10:30" in description and "Needling: 10:30-11:00" in description
    assert "cream applied 10:00-10:05" in description and "Room turnover until 11:20" in description
    assert str(shown[review["id"]]["description"]).startswith("Review: 14:00-14:15")


def test_the_feed_carries_the_clinics_vtimezone(world, client):
    world.consulted()
    world.book(starts_at=world.at(2))
    calendar = read(client, issue(world.caller, "clinic", world.clinic["id"]))
    assert [str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/London"]
    assert str(calendar["x-wr-timezone"]) == "Europe/London"


def test_patients_appear_by_initials_only(world, client):
    patient = world.new_patient(name="Olivia Grace Bennett", email="olivia@example.com", phone="+442079460101")
    world.consulted(patient["id"])
    world.book(patient_id=patient["id"], starts_at=world.at(2))
    response = client.get(issue(world.caller, "room", world.rooms[0]["id"])["url"].removeprefix("http://localhost"))
    text = response.get_data(as_text=True)
    assert "O.G.B." in text
    for secret in ("Olivia", "Bennett", "olivia@example.com", "2079460101", patient["id"]):
        assert secret not in text


def test_sequence_and_status_follow_each_change(world, client):
    world.consulted()
    appointment = world.book(starts_at=world.at(2))
    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    assert int(events(read(client, feed))[appointment["id"]]["sequence"]) == 0
    moved = world.caller.patch(f"/v1/appointments/{appointment['id']}", json={"starts_at": world.at(2, 12)}).get_json()
    shown = events(read(client, feed))
    assert str(shown[appointment["id"]]["status"]) == "CANCELLED"
    assert int(shown[appointment["id"]]["sequence"]) >= 1
    assert str(shown[moved["id"]]["status"]) == "CONFIRMED"
    before = int(shown[moved["id"]]["sequence"])
    world.caller.post(f"/v1/appointments/{moved['id']}/cancel", json={"reason": "patient_request"})
    after = events(read(client, feed))[moved["id"]]
    assert str(after["status"]) == "CANCELLED" and int(after["sequence"]) > before


def test_holds_are_tentative_and_cancelled_once_they_end(world, client):
    world.consulted()
    hold = world.hold(starts_at=world.at(2))
    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    event = events(read(client, feed))[hold["id"]]
    assert str(event["status"]) == "TENTATIVE" and "(held)" in str(event["summary"])
    world.clock.advance(minutes=11)
    assert str(events(read(client, feed))[hold["id"]]["status"]) == "CANCELLED"


def test_a_dst_change_inside_the_feed(world, client):
    """London moves to BST on 28 March 2027: the same 10:00 on both sides, an hour apart in UTC."""
    world.clock.now = datetime(2027, 3, 22, 8, tzinfo=UTC)
    world.consulted()
    before = world.book(treatment_type_id=world.review["id"], starts_at="2027-03-26T10:00:00+00:00")
    after = world.book(treatment_type_id=world.review["id"], starts_at="2027-03-29T10:00:00+01:00")
    calendar = read(client, issue(world.caller, "clinic", world.clinic["id"]))
    shown = events(calendar)
    assert shown[before["id"]].decoded("dtstart").utcoffset() == timedelta(0)
    assert shown[after["id"]].decoded("dtstart").utcoffset() == timedelta(hours=1)
    assert shown[after["id"]].decoded("dtstart") == datetime(2027, 3, 29, 9, tzinfo=UTC)
    # recurring-ical-events, as a calendar app would expand it, sees both at 10:00 local.
    occurrences = recurring_ical_events.of(calendar).between(datetime(2027, 3, 23), datetime(2027, 3, 31))
    assert sorted(
        (o.decoded("dtstart").astimezone(LONDON).hour, o.decoded("dtstart").astimezone(LONDON).day) for o in occurrences
    ) == [(10, 26), (10, 29)]
    vtimezone = calendar.walk("VTIMEZONE")[0]
    assert {str(sub.name) for sub in vtimezone.subcomponents} == {"STANDARD", "DAYLIGHT"}


def test_a_revoked_token_is_a_404(world, client):
    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    path = feed["url"].removeprefix("http://localhost")
    assert client.get(path).status_code == 200
    assert world.caller.delete(f"/v1/calendar-feeds/{feed['id']}").status_code == 204
    assert_problem(client.get(path), 404, "not_found")


def test_a_token_opens_only_its_own_calendar(world, client, other):
    feed = issue(world.caller, "practitioner", world.practitioner["id"])
    token = feed["token"]
    assert_problem(client.get(f"/v1/rooms/{world.rooms[0]['id']}/calendar.ics?token={token}"), 404, "not_found")
    assert_problem(
        client.get(f"/v1/practitioners/{world.practitioner['id']}/calendar.ics?token=ics_guess"), 404, "not_found"
    )
    assert_problem(client.get(f"/v1/practitioners/{world.practitioner['id']}/calendar.ics"), 422, "validation_error")


def test_feeds_are_issued_only_for_the_organizations_own(world, other):
    response = other.post(
        "/v1/calendar-feeds", json={"owner_type": "practitioner", "owner_id": world.practitioner["id"]}
    )
    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize("owner", ["room", "clinic"])
def test_room_and_clinic_feeds_list_what_happens_there(world, client, owner):
    world.consulted()
    here = world.book(starts_at=world.at(2), room_id=world.rooms[0]["id"])
    other_patient = world.new_patient(name="Sam Lee")
    world.consulted(other_patient["id"])
    there = world.book(
        patient_id=other_patient["id"],
        treatment_type_id=world.review["id"],
        room_id=world.rooms[1]["id"],
        starts_at=world.at(3),
    )
    owner_id = world.rooms[0]["id"] if owner == "room" else world.clinic["id"]
    shown = set(events(read(client, issue(world.caller, owner, owner_id))))
    assert shown == ({here["id"]} if owner == "room" else {here["id"], there["id"]})
