"""Holds: a slot kept for a patient for a few minutes while they fill in a form."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from booking.services import appointments
from models import HOLD_SOURCES, HOLD_STATUSES

from . import db, etags
from .auth import actor, organization_id, requires
from .base import Blueprint, ClinicInstant, Schema
from .slots import BookingInputSchema, SlotOutputSchema, override_reason_field, slot_request

# Unlike every other DELETE (api/base.py GONE), releasing is a step of the hold's life, as expiring
# and booking are: a follow-up's proposal still names its hold, so it reads on.
RELEASED = (
    "The hold reads on with `status: released`, as an expired or a booked one does (a declined follow-up "
    "still names it); it claims nothing from then on, and a second DELETE changes nothing. A live hold of a "
    "course plan is released with its plan (DELETE /v1/course-plans/{id}): alone it is a 409 `invalid_transition`."
)

blp = Blueprint(
    "holds",
    __name__,
    url_prefix="/v1/holds",
    description="Holds: a slot claimed for a patient until it expires or is booked",
)


class HoldSchema(SlotOutputSchema):
    id = ma.fields.String()
    patient_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "null on a booking page's hold until it is booked (its patient registers then)"},
    )
    course_id = ma.fields.String(allow_none=True)
    area = ma.fields.String(allow_none=True)
    source = ma.fields.String(metadata={"description": "Who made the hold", "enum": list(HOLD_SOURCES)})
    expires_at = ClinicInstant()
    status = ma.fields.Method(
        "_status", metadata={"type": "string", "enum": list(HOLD_STATUSES), "description": "Live, lapsed or used"}
    )
    appointment_id = ma.fields.String(allow_none=True, metadata={"description": "Set once booked"})
    course_plan_id = ma.fields.String(
        allow_none=True, metadata={"description": "The course plan it holds a session of (`source: course_plan`)"}
    )
    extended_at = ClinicInstant(allow_none=True, metadata={"description": "Set once extended (at most once)"})
    override_key_id = ma.fields.String(
        allow_none=True, metadata={"description": "The staff key that overrode the policy"}
    )
    override_reason = ma.fields.String(allow_none=True, metadata={"description": "Why it overrode the policy"})
    created_at = ma.fields.AwareDateTime()

    def _status(self, hold):
        return appointments.hold_status(hold, clock.now())


def _hold_minutes(**kwargs) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1),
        metadata={"description": "How long to hold, within the booking policy's max_hold_minutes", **kwargs},
    )


class HoldInputSchema(BookingInputSchema):
    hold_minutes = _hold_minutes(
        description="How long to hold; default the booking policy's hold_minutes, at most its max_hold_minutes"
    )


class ExtendSchema(Schema):
    hold_minutes = _hold_minutes(
        description="The hold then lasts this long from now (default the policy's "
        "hold_minutes), and at most max_hold_minutes from when it was placed"
    )
    override_reason = override_reason_field()


@blp.route("")
class Holds(MethodView):
    @requires("book")
    @blp.arguments(HoldInputSchema)
    @blp.response(201, HoldSchema)
    @blp.alt_response(409, response="CONFLICT")
    @etags.tagged
    def post(self, data):
        """Hold a slot for a patient

        The hold claims the same resources as a booking and is checked against
        every clinical rule and the booking policy; it lapses after `hold_minutes`
        (default the policy's `hold_minutes`, at most its `max_hold_minutes`).
        """
        return appointments.place_hold(
            db.session(),
            organization_id(),
            slot_request(data),
            actor=actor(data.get("override_reason")),
            hold_minutes=data.get("hold_minutes"),
        )


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
    @blp.alt_response(409, response="CONFLICT")  # a course plan's hold: released with its plan
    @blp.doc(description=RELEASED)
    @etags.conditional
    def delete(self, hold_id):
        """Release a hold (a patient declining a proposed follow-up does this)"""
        appointments.release_hold(db.session(), organization_id(), hold_id, etags.expected_version(hold_id))


@blp.route("/<hold_id>/extend", methods=["POST"])
@requires("book")
@blp.arguments(ExtendSchema)
@blp.response(200, HoldSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(410, response="GONE")
@etags.conditional
@etags.tagged
def extend(data, hold_id):
    """Extend a live hold, once, within the booking policy's max_hold_minutes"""
    return appointments.extend_hold(
        db.session(),
        organization_id(),
        hold_id,
        actor(data.get("override_reason")),
        data.get("hold_minutes"),
        etags.expected_version(hold_id),
    )
