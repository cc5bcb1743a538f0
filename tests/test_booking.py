"""Booking: holds, appointments and the clinical rules through the API."""
from .helpers import assert_problem


def test_book_a_session_directly(world):
    world.consulted()
    appointment = world.book()
    assert appointment["status"] == "booked"
    assert appointment["starts_at"] == "2027-01-04T10:00:00+00:00"
    assert appointment["procedure_starts_at"] == "2027-01-04T10:30:00+00:00"
    assert appointment["ends_at"] == "2027-01-04T11:10:00+00:00"


def test_the_same_room_twice_is_a_409_naming_the_clash(world):
    world.consulted()
    first = world.book()
    other = world.new_patient(name="Other", email="o@example.com")
    world.consulted(other["id"])
    body = assert_problem(world.caller.post("/v1/appointments", json=world.slot(
        patient_id=other["id"], starts_at=world.at(hour=10, minute=30),
        practitioner_id=world.practitioner["id"])), 409, "slot_unavailable")
    assert any(c.get("appointment_id") == first["id"] for c in body["conflicts"])
    assert "Pat" not in str(body["conflicts"])
