"""The waitlist: patients waiting for a slot to free up; the scheduler offers them freed ones as holds."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from booking.services import waitlist
from models import WAITLIST_OFFER_OUTCOMES, WAITLIST_STATUSES, WaitlistEntry

from . import db, etags
from .auth import organization_id, requires
from .base import GONE, Blueprint, Id, Instant, ListArgs, LocalTime, Schema, page_schema, paginate, scoped
from .holds import HoldSchema

blp = Blueprint(
    "waitlist",
    __name__,
    url_prefix="/v1/waitlist",
    description="Waitlist: patients waiting for a freed slot, offered one as a hold by the scheduler",
)

LEFT = (
    GONE + " A live offer's hold is released at once (the offer is withdrawn), so its slot goes to the next "
    "entry it fits."
)
# What the API shows: a cancelled entry (one deleted while open) is gone.
SHOWN_STATUSES = [s for s in WAITLIST_STATUSES if s != "cancelled"]


class EntryInstant(Instant):
    """An instant shown with the offset of the entry's zone (its first clinic's, UTC for the whole chain)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return super()._serialize(clock.shown_in(value, ZoneInfo(obj.timezone)), attr, obj, **kwargs)


def _weekdays(**kwargs) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Integer(strict=True, validate=ma.validate.Range(1, 7)),
        metadata={"description": "ISO weekdays, 1 Monday to 7 Sunday, on the slot's clinic's clock; empty: any"},
        **kwargs,
    )


class WaitlistInputSchema(Schema):
    patient_id = Id(required=True)
    treatment_type_id = Id(required=True)
    clinic_ids = ma.fields.List(
        Id(),
        validate=ma.validate.Length(max=100),
        metadata={"description": "Only these clinics; omit for every clinic"},
    )
    practitioner_id = Id(allow_none=True, metadata={"description": "Only this practitioner; omit or null for any"})
    course_id = Id(
        allow_none=True, metadata={"description": "The course the session counts on (default the patient's active one)"}
    )
    start = Instant(metadata={"description": "Slots starting at or after this (default now)"})
    end = Instant(required=True, metadata={"description": "Slots starting before this; the entry ends then"})
    weekdays = _weekdays(validate=ma.validate.Length(max=7))
    time_from = LocalTime(metadata={"description": "Slots starting at or after this local time of day"})
    time_to = LocalTime(end_of_day=True, metadata={"description": "Slots starting before this local time of day"})

    @ma.validates_schema
    def _windows(self, data, **kwargs):
        problems = {}
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            problems["end"] = ["Must be after start."]
        time_from, time_to = data.get("time_from"), data.get("time_to")
        if time_from is not None and time_to is not None and time_to <= time_from:
            problems["time_to"] = ["Must be after time_from."]
        if problems:
            raise ma.ValidationError(problems)


class WaitlistOfferSchema(ma.Schema):
    id = ma.fields.String()
    outcome = ma.fields.String(
        allow_none=True,
        metadata={
            "enum": [o for o in WAITLIST_OFFER_OUTCOMES if o != "withdrawn"] + [None],
            "description": "null while unanswered; booked, declined (hold released), expired",
        },
    )
    hold = ma.fields.Nested(HoldSchema, metadata={"description": "Book it with POST /v1/appointments {hold_id}"})
    created_at = ma.fields.AwareDateTime()


class WaitlistEntrySchema(ma.Schema):
    id = ma.fields.String()
    status = ma.fields.Function(
        waitlist.effective_status,
        metadata={
            "type": "string",
            "enum": SHOWN_STATUSES,
            "description": (
                "waiting; offered (a live hold: book it with POST /v1/appointments {hold_id}, decline with "
                "DELETE /v1/holds/{id}); fulfilled; expired (the window passed)"
            ),
        },
    )
    patient_id = ma.fields.String()
    treatment_type_id = ma.fields.String()
    clinic_ids = ma.fields.List(ma.fields.String(), metadata={"description": "Empty: every clinic"})
    practitioner_id = ma.fields.String(allow_none=True)
    course_id = ma.fields.String(allow_none=True)
    start = EntryInstant(attribute="window_starts_at")
    end = EntryInstant(attribute="window_ends_at")
    weekdays = _weekdays()
    time_from = LocalTime(allow_none=True)
    time_to = LocalTime(end_of_day=True, allow_none=True)
    timezone = ma.fields.String(metadata={"description": "The zone start and end are shown in"})
    offer = ma.fields.Nested(
        WaitlistOfferSchema,
        attribute="latest_offer",
        allow_none=True,
        metadata={"description": "The latest offer (live or answered), or null"},
    )
    offers_made = ma.fields.Integer(metadata={"description": "How many slots it was offered so far"})
    appointment_id = ma.fields.String(allow_none=True, metadata={"description": "Set once fulfilled"})
    joined_at = EntryInstant(attribute="created_at", metadata={"description": "Offers go in join order"})
    ended_at = EntryInstant(allow_none=True)
    updated_at = ma.fields.AwareDateTime()


class WaitlistListArgs(ListArgs):
    patient_id = Id()
    treatment_type_id = Id()
    status = ma.fields.String(validate=ma.validate.OneOf(SHOWN_STATUSES))


WaitlistEntryPageSchema = page_schema(WaitlistEntrySchema)


@blp.route("")
class Waitlist(MethodView):
    @requires("read")
    @blp.arguments(WaitlistListArgs, location="query")
    @blp.response(200, WaitlistEntryPageSchema)
    def get(self, args):
        """List waitlist entries, by patient, treatment type and status"""
        query = scoped(WaitlistEntry)
        for name in ("patient_id", "treatment_type_id"):
            if args.get(name):
                query = query.where(getattr(WaitlistEntry, name) == args[name])
        if args.get("status"):
            query = query.where(waitlist.status_is(args["status"], clock.now()))
        return paginate(query, WaitlistEntry, args)

    @requires("book")
    @blp.arguments(WaitlistInputSchema)
    @blp.response(201, WaitlistEntrySchema)
    @etags.tagged
    def post(self, data):
        """Put a patient on the waitlist

        When a slot frees up inside the window (a cancellation, a reschedule away, a released or
        expired hold, time off removed, hours or rooms added), the scheduler offers it to the
        earliest-joined entry whose clinical rules, booking policy (a frontend's) and preferences
        it fits: a hold with `source: waitlist` and the event `waitlist.offered`.
        """
        lists: dict[str, Any] = {k: tuple(data.pop(k)) for k in ("clinic_ids", "weekdays") if k in data}
        return waitlist.join(db.session(), organization_id(), waitlist.EntryRequest(**data, **lists))


@blp.route("/<entry_id>")
class WaitlistItem(MethodView):
    @requires("read")
    @blp.response(200, WaitlistEntrySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, entry_id):
        """Get a waitlist entry and its latest offer"""
        return waitlist.get_entry(db.session(), organization_id(), entry_id)

    @requires("book")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=LEFT)
    @etags.conditional
    def delete(self, entry_id):
        """Take a patient off the waitlist"""
        waitlist.leave(db.session(), organization_id(), entry_id, etags.expected_version(entry_id))
