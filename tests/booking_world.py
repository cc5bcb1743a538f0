"""A small clinic world for booking tests, with a clock the test controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

# Monday 4 January 2027, 08:00 UTC: London is on GMT, so local = UTC.
MONDAY = datetime(2027, 1, 4, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    caller: object
    clock: Clock
    clinic: dict
    rooms: list
    practitioner: dict
    consultation: dict
    microneedling: dict
    review: dict
    patient: dict
    extra: dict = field(default_factory=dict)

    def at(self, day: int = 0, hour: int = 10, minute: int = 0) -> str:
        """An ISO instant `day` days after Monday 4 January 2027 at hour:minute UTC."""
        return (MONDAY + timedelta(days=day, hours=hour, minutes=minute)).isoformat()

    def slot(self, **overrides) -> dict:
        return {
            "clinic_id": self.clinic["id"],
            "practitioner_id": self.practitioner["id"],
            "room_id": self.rooms[0]["id"],
            "treatment_type_id": self.microneedling["id"],
            "patient_id": self.patient["id"],
            "starts_at": self.at(),
            **overrides,
        }

    def book(self, status=201, **overrides):
        response = self.caller.post("/v1/appointments", json=self.slot(**overrides))
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def hold(self, status=201, **overrides):
        response = self.caller.post("/v1/holds", json=self.slot(**overrides))
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def consulted(self, patient_id=None, day=-10):
        """Record a completed consultation for the patient `day` days from Monday."""
        body = {"treatment_type_id": self.consultation["id"], "performed_at": self.at(day)}
        response = self.caller.post(f"/v1/patients/{patient_id or self.patient['id']}/past-sessions", json=body)
        assert response.status_code == 201, response.get_json()

    def new_patient(self, **overrides) -> dict:
        return self.caller.make_patient(**overrides)


_patients = count(1)


def patient(w: World, consulted: bool = True, **overrides) -> dict:
    """Another patient of the world, by default with a completed consultation."""
    n = next(_patients)
    p = w.new_patient(**{"name": f"Patient {n}", "email": f"p{n}@example.com", **overrides})
    if consulted:
        w.consulted(p["id"])
    return p


def build_world(
    caller, clock: Clock, *, timezone_name="Europe/London", numbing_area_capacity=None, device_count=None
) -> World:
    clinic_fields = {"timezone": timezone_name}
    clinic = caller.make_clinic(**clinic_fields)
    extra_clinic = {}
    if numbing_area_capacity is not None:
        extra_clinic["numbing_area_capacity"] = numbing_area_capacity
    if device_count is not None:
        extra_clinic["device_count"] = device_count
    if extra_clinic:
        response = caller.patch(f"/v1/clinics/{clinic['id']}", json=extra_clinic)
        assert response.status_code == 200, response.get_json()
    rooms = [caller.make_room(clinic["id"], name=f"Room {i}") for i in (1, 2)]
    consultation = caller.make_treatment_type("consultation")
    microneedling = caller.make_treatment_type("microneedling")
    review = caller.make_treatment_type("review")
    practitioner = caller.make_practitioner(
        [clinic["id"]], treatment_type_ids=[consultation["id"], microneedling["id"], review["id"]]
    )
    week = [{"clinic_id": clinic["id"], "weekday": d, "start": "09:00", "end": "17:00"} for d in range(6)]
    assert caller.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=week).status_code == 200
    patient = caller.make_patient()
    return World(caller, clock, clinic, rooms, practitioner, consultation, microneedling, review, patient)
