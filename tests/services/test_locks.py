"""Row locks on PostgreSQL: a lifecycle change locks its own row only.

Locking an appointment or hold FOR UPDATE while its clinic is eagerly joined would lock
the clinic row too: every booking at the clinic (whose insert needs a key-share lock on
the clinic) would wait for it, and a reschedule (appointment, clinic, then patient)
could deadlock with a booking (patient, then clinic) - the load harness found that as a
500. Two real connections on a database of their own.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from api import create_app
from booking.services import appointments
from booking.services.appointments import SlotRequest
from models import Claim, Hold, make_engine, make_sessionmaker, writer

from ..booking_world import MONDAY, Clock, build_world
from ..helpers import make_organization
from ..scaffold import scratch_database


@pytest.fixture
def committed(backend):
    name, test_url = backend
    if name != "postgresql":
        pytest.skip("row locks: SQLite serializes whole write transactions instead")
    with scratch_database(test_url, "locks") as url:
        app = create_app({"DATABASE_URL": url, "TESTING": True, "RATE_LIMIT_ENABLED": False})
        world = build_world(make_organization(app, app.test_client(), "Locks"), Clock(MONDAY))
        engine = make_engine(url)
        try:
            yield world, make_sessionmaker(writer(engine))
        finally:
            engine.dispose()
            app.extensions["db_engine"].dispose()


@pytest.mark.parametrize("lock", ["appointment", "hold"])
def test_locking_an_appointment_or_hold_does_not_block_bookings_at_its_clinic(committed, lock):
    world, sessions = committed
    world.consulted(day=-60)  # the real clock runs here: a consultation before today
    other = world.new_patient(name="Other Patient")
    locked = world.book(starts_at=world.at(2)) if lock == "appointment" else world.hold(starts_at=world.at(2))
    organization = world.caller.organization_id
    with sessions() as first, sessions() as second:
        if lock == "appointment":  # as reschedule, cancel, check-in, complete and no-show do
            appointments.get_appointment(first, organization, locked["id"], lock=True)
        else:  # as booking from a hold and releasing it do
            appointments.get_hold(first, organization, locked["id"], lock=True)
        second.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
        hold = appointments.place_hold(
            second,
            organization,
            SlotRequest(
                world.clinic["id"],
                world.practitioner["id"],
                world.rooms[1]["id"],
                world.review["id"],
                other["id"],
                MONDAY + timedelta(days=3, hours=11),
            ),
            ttl=timedelta(minutes=5),
        )
        second.commit()
        # The first session really holds its row: a third connection cannot lock it.
        with sessions() as third:
            third.execute(sa.text("SET LOCAL lock_timeout = '100ms'"))
            table = "appointments" if lock == "appointment" else "holds"
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                third.execute(sa.text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE"), {"id": locked["id"]})
        first.rollback()
    # and the hold placed meanwhile at the same clinic is committed, claiming its slot.
    with sessions() as check:
        placed = check.get(Hold, hold.id)
        assert placed is not None and placed.clinic_id == world.clinic["id"]
        assert check.scalar(sa.select(sa.func.count()).select_from(Claim).where(Claim.hold_id == hold.id)) > 0
