"""Availability search: bookable slots for a treatment, numbing gap included."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import current_app

from booking.domain import clock
from booking.domain.errors import Forbidden, InvalidInput
from booking.services import availability_search, booking_links, patients

from . import db, i18n
from .auth import actor, authenticate, key_to_show, organization_id, requires, shown_live
from .base import Blueprint, Id, Instant, Schema
from .errors import _rfc3339
from .slots import SlotOutputSchema

blp = Blueprint(
    "availability",
    __name__,
    url_prefix="/v1/availability",
    description="Bookable slots: what a booking frontend calls most",
)


class AvailabilityArgs(Schema):
    treatment_type_id = Id(required=True)
    start = Instant(required=True, metadata={"description": "Window start (starts at or after)"})
    end = Instant(required=True, metadata={"description": "Window end (starts before); at most 31 days after start"})
    clinic_id = Id(metadata={"description": "Omit to search every clinic of the organization"})
    practitioner_id = Id(metadata={"description": "Only this practitioner's slots"})
    room_id = Id()
    patient_id = Id(
        metadata={"description": "Apply this patient's rules (interval, course cap, consultation, contraindications)"}
    )
    patient_token = ma.fields.String(
        validate=ma.validate.Length(min=1, max=100),
        metadata={
            "description": "A patient's booking link token (bl_...): a booking page searches with that patient's "
            "rules, as it will book"
        },
    )
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 500))
    order = ma.fields.String(
        load_default="earliest",
        validate=ma.validate.OneOf(("earliest", "evening")),
        metadata={"description": "evening: latest in the day first"},
    )


class ReasonSchema(ma.Schema):
    code = ma.fields.String(
        validate=ma.validate.OneOf([refusal.code for refusal in patients.PATIENT_REFUSALS]),
        metadata={"description": "The rule that ruled the window out"},
    )
    detail = ma.fields.String()
    earliest_start = ma.fields.String(
        allow_none=True, metadata={"description": "When the patient may book again", "format": "date-time"}
    )


class AvailabilitySchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(SlotOutputSchema), required=True)
    reason = ma.fields.Nested(
        ReasonSchema,
        allow_none=True,
        required=True,
        metadata={"description": "Set when the patient's rules leave no slot in the window; null otherwise"},
    )

    def dump(self, obj, *, many=None):
        """What marshmallow's dump gives (a test compares the two), written out for the slots.

        Through the fields, the few dozen slots of a week cost about as much as the search itself.
        """
        if many:
            return [self.dump(item) for item in obj]
        reason = obj["reason"]
        return {
            "data": [_slot(slot) for slot in obj["data"]],
            "reason": None if reason is None else ReasonSchema().dump(reason),
        }


def _slot(slot) -> dict:
    """One slot as SlotOutputSchema dumps it: instants in ISO 8601 with the clinic's offset."""
    zone = ZoneInfo(slot.clinic.timezone)
    return {
        "clinic_id": slot.clinic_id,
        "practitioner_id": slot.practitioner_id,
        "room_id": slot.room_id,
        "treatment_type_id": slot.treatment_type_id,
        "starts_at": clock.shown_in(slot.starts_at, zone).isoformat(),
        "procedure_starts_at": clock.shown_in(slot.procedure_starts_at, zone).isoformat(),
        "ends_at": clock.shown_in(slot.ends_at, zone).isoformat(),
    }


def settings() -> availability_search.Settings:
    config = current_app.config
    return availability_search.Settings(
        grid_minutes=config["AVAILABILITY_GRID_MINUTES"],
        min_notice=timedelta(minutes=config["AVAILABILITY_MIN_NOTICE_MINUTES"]),
        horizon=timedelta(days=config["AVAILABILITY_HORIZON_DAYS"]),
    )


@blp.route("")
@requires("read", publishable=True, key_shown_by_view=True)
@blp.arguments(AvailabilityArgs, location="query")
@blp.response(200, AvailabilitySchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
def availability(args):
    """Find bookable slots

    One slot per start time (the engine picks the practitioner and room, the
    patient's last practitioner first), or every slot of one practitioner.
    Starts lie on a grid of the clinic's local clock, at least the minimum
    notice ahead and within the horizon. Every slot offered is bookable now.

    A publishable key searches for a new patient (no `patient_id`): a first visit's rules apply,
    so a session's search answers no slot and `reason.code: consultation_required`; with a
    patient's booking link (`patient_token`), that patient's rules apply. A publishable key's
    `reason.detail` is written for the patient, in the language of `Accept-Language`.
    """
    who, page = actor(), authenticate().publishable
    if args.get("patient_id") and page:  # a patient's history is not a page's to probe
        raise Forbidden("A publishable key searches for a new patient: send the request without patient_id.")
    token = args.pop("patient_token", None)
    if token is not None:  # the patient's own link: their rules, as the page will book
        if args.get("patient_id"):
            raise InvalidInput({"patient_token": ["Send patient_id or patient_token, not both."]})
        args["patient_id"] = booking_links.invited(db.session(), organization_id(), token).patient_id
    query = availability_search.Query(**args, online_only=who.frontend, first_visit=page and token is None)
    key_id = key_to_show()
    key = availability_search.KeyShown(key_id) if key_id else None
    slots, refusal, clinics = availability_search.search(db.session(), organization_id(), query, settings(), who, key)
    if key is not None and key.live:
        shown_live()
    data = [SimpleNamespace(**vars(slot), clinic=clinics[slot.clinic_id]) for slot in slots]
    reason = None
    if refusal is not None:
        facts = _rfc3339(refusal.facts)
        detail = i18n.patient_detail(refusal.code, refusal.facts) or refusal.detail  # a page's: the patient's words
        reason = {"code": refusal.code, "detail": detail, "earliest_start": facts.get("earliest_start")}
    return {"data": data, "reason": reason}
