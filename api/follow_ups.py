"""Follow-ups: the scheduler's proposals for a patient's next session, each with its hold."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.services import follow_ups
from models import FOLLOW_UP_STATUSES, FollowUp

from . import etags
from .auth import requires
from .base import Blueprint, ClinicInstant, Id, Instant, ListArgs, get_or_404, page_schema, paginate, scoped
from .errors import ALL_CODES
from .holds import HoldSchema

blp = Blueprint(
    "follow_ups",
    __name__,
    url_prefix="/v1/follow-ups",
    description="Follow-ups: the next session proposed and held after a completed one",
)


class FollowUpReasonSchema(ma.Schema):
    code = ma.fields.String(
        attribute="reason_code",
        validate=ma.validate.OneOf([*ALL_CODES, follow_ups.NO_SLOT, follow_ups.ALREADY_BOOKED]),
        metadata={"description": "The problem code of the rule or refusal behind it, or no_slot, already_booked"},
    )
    detail = ma.fields.String(attribute="reason_detail", allow_none=True)


class _Reason(ma.fields.Nested):
    """The follow-up's reason_code and reason_detail as one object, or null when there is no reason."""

    def serialize(self, attr, obj, accessor=None, **kwargs):
        return None if obj.reason_code is None else self.schema.dump(obj)


class FollowUpSchema(ma.Schema):
    id = ma.fields.String()
    status = ma.fields.Function(
        follow_ups.effective_status,
        metadata={
            "type": "string",
            "enum": list(FOLLOW_UP_STATUSES),
            "description": (
                "proposed (the hold is live: book it with POST /v1/appointments {hold_id} to confirm, "
                "DELETE /v1/holds/{id} to decline), no_slot (nothing free in the window: the clinic should act), "
                "not_needed (already booked, or the course is complete), booked, declined, expired"
            ),
        },
    )
    appointment_id = ma.fields.String(metadata={"description": "The completed session this follows"})
    patient_id = ma.fields.String()
    clinic_id = ma.fields.String()
    treatment_type_id = ma.fields.String()
    course_id = ma.fields.String(allow_none=True)
    window_starts_at = ClinicInstant(
        metadata={"description": "The first instant of the min_interval_days-th local date after the session's"}
    )
    window_ends_at = ClinicInstant(
        metadata={"description": "The end of the recommended_interval_days-th local date after the session's"}
    )
    hold = ma.fields.Nested(HoldSchema, allow_none=True)
    booked_appointment_id = ma.fields.String(allow_none=True, metadata={"description": "Set once confirmed"})
    reason = _Reason(
        FollowUpReasonSchema, allow_none=True, metadata={"description": "Why nothing was held; null when proposed"}
    )
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class FollowUpListArgs(ListArgs):
    patient_id = Id()
    clinic_id = Id()
    status = ma.fields.String(validate=ma.validate.OneOf(FOLLOW_UP_STATUSES))
    start = Instant(metadata={"description": "Only proposals whose recommended window ends after this"})
    end = Instant(metadata={"description": "Only proposals whose recommended window starts before this"})


FollowUpPageSchema = page_schema(FollowUpSchema)


@blp.route("")
class FollowUps(MethodView):
    @requires("read")
    @blp.arguments(FollowUpListArgs, location="query")
    @blp.response(200, FollowUpPageSchema)
    def get(self, args):
        """List follow-up proposals, by patient, clinic, status and window"""
        query = scoped(FollowUp)
        for field in ("patient_id", "clinic_id"):
            if args.get(field):
                query = query.where(getattr(FollowUp, field) == args[field])
        if args.get("status"):
            query = query.where(follow_ups.status_is(args["status"]))
        if args.get("start"):
            query = query.where(FollowUp.window_ends_at > args["start"])
        if args.get("end"):
            query = query.where(FollowUp.window_starts_at < args["end"])
        return paginate(query, FollowUp, args)


@blp.route("/<follow_up_id>")
class FollowUpItem(MethodView):
    @requires("read")
    @blp.response(200, FollowUpSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, follow_up_id):
        """Get a follow-up proposal and its hold"""
        return get_or_404(FollowUp, follow_up_id, what="follow-up")
