"""Holds: a slot kept for a patient for a few minutes while they fill in a form."""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from booking.domain import clock
from booking.services import appointments
from models import HOLD_SOURCES, HOLD_STATUSES

from . import db, etags
from .auth import organization_id, requires
from .base import Blueprint, ClinicInstant
from .slots import BookingInputSchema, SlotOutputSchema, slot_request

# Unlike every other DELETE (api/base.py GONE), releasing is a step of the hold's life, as expiring
# and booking are: a follow-up's proposal still names its hold, so it reads on.
RELEASED = (
    "The hold reads on with `status: released`, as an expired or a booked one does (a declined follow-up "
    "still names it); it claims nothing from then on, and a second DELETE changes nothing."
)

blp = Blueprint(
    "holds",
    __name__,
    url_prefix="/v1/holds",
    description="Holds: a slot claimed for a patient until it expires or is booked",
)


class HoldSchema(SlotOutputSchema):
    id = ma.fields.String()
    patient_id = ma.fields.String()
    course_id = ma.fields.String(allow_none=True)
    area = ma.fields.String(allow_none=True)
    source = ma.fields.String(metadata={"description": "Who made the hold", "enum": list(HOLD_SOURCES)})
    expires_at = ClinicInstant()
    status = ma.fields.Method(
        "_status", metadata={"type": "string", "enum": list(HOLD_STATUSES), "description": "Live, lapsed or used"}
    )
    appointment_id = ma.fields.String(allow_none=True, metadata={"description": "Set once booked"})
    created_at = ma.fields.AwareDateTime()

    def _status(self, hold):
        return appointments.hold_status(hold, clock.now())


@blp.route("")
class Holds(MethodView):
    @requires("book")
    @blp.arguments(BookingInputSchema)
    @blp.response(201, HoldSchema)
    @blp.alt_response(409, response="CONFLICT")
    @etags.tagged
    def post(self, data):
        """Hold a slot for a patient

        The hold claims the same resources as a booking and is checked against
        every clinical rule; it lapses after `HOLD_TTL` seconds (default 600).
        """
        ttl = timedelta(seconds=current_app.config["HOLD_TTL_SECONDS"])
        return appointments.place_hold(db.session(), organization_id(), slot_request(data), ttl=ttl)


@blp.route("/<hold_id>")
class HoldItem(MethodView):
    @requires("read")
    @blp.response(200, HoldSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, hold_id):
        """Get a hold and whether it is still active"""
        return appointments.get_hold(db.session(), organization_id(), hold_id)

    @requires("book")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=RELEASED)
    @etags.conditional
    def delete(self, hold_id):
        """Release a hold (a patient declining a proposed follow-up does this)"""
        appointments.release_hold(db.session(), organization_id(), hold_id, etags.expected_version(hold_id))
