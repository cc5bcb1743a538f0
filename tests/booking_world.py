"""A small clinic world for booking tests, with a clock the test controls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from booking.services.history import record_past_session

from . import factories

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
        """Record a completed consultation for the patient `day` days from Monday (on the ORM, through
        the service POST .../past-sessions calls)."""
        with self.caller.app.extensions["db_write_sessions"]() as db:
            record_past_session(
                db,
                self.caller.organization_id,
                patient_id or self.patient["id"],
                treatment_type_id=self.consultation["id"],
                performed_at=datetime.fromisoformat(self.at(day)),
            )
            db.commit()

    def qualify(self, *treatment_type_ids: str) -> None:
        """Qualify the world's practitioner for more treatment types, beside the world's three."""
        ids = [self.consultation["id"], self.microneedling["id"], self.review["id"], *treatment_type_ids]
        response = self.caller.patch(f"/v1/practitioners/{self.practitioner['id']}", json={"treatment_type_ids": ids})
        assert response.status_code == 200, response.get_json()

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


# For the tests of the clinical rules, which pick their times freely (an hour ahead, a year ahead, at
# 10:05): a policy that lets a staff key book any future start. The policy's own tests use the defaults.
ANY_TIME = {"min_notice_minutes": 0, "horizon_days": 3 * 365, "grid_minutes": 1}


def any_time_policy(caller) -> None:
    """The caller's organization takes bookings at any notice, horizon and minute (ANY_TIME)."""
    from models import Organization

    with caller.app.extensions["db_write_sessions"]() as db:
        db.get_one(Organization, caller.organization_id).booking_policy = dict(ANY_TIME)
        db.commit()


def build_world(
    caller, clock: Clock, *, timezone_name="Europe/London", numbing_area_capacity=None, device_count=None
) -> World:
    """One clinic with two rooms, the three treatment types, a practitioner qualified for all three
    working 09:00-17:00 Monday to Saturday, and a patient: written on the ORM (tests/factories.py),
    not through the API, which the tests exercise themselves."""
    org = caller.organization_id
    clinic_fields = {"timezone": timezone_name}
    if numbing_area_capacity is not None:
        clinic_fields["numbing_area_capacity"] = numbing_area_capacity
    if device_count is not None:
        clinic_fields["device_count"] = device_count
    with caller.app.extensions["db_write_sessions"]() as db:
        clinic = factories.make_clinic(db, org, **clinic_fields)
        rooms = [factories.make_room(db, clinic, name=f"Room {i}") for i in (1, 2)]
        consultation, microneedling, review = (
            factories.make_treatment_type(db, org, kind) for kind in ("consultation", "microneedling", "review")
        )
        practitioner = factories.make_practitioner(db, [clinic], [consultation, microneedling, review])
        patient = factories.make_patient(db, org)
        rows = [clinic, rooms, practitioner, consultation, microneedling, review, patient]
        clinic, rooms, practitioner, consultation, microneedling, review, patient = (
            [factories.as_json(r) for r in row] if isinstance(row, list) else factories.as_json(row) for row in rows
        )
        db.commit()
    return World(caller, clock, clinic, rooms, practitioner, consultation, microneedling, review, patient)
