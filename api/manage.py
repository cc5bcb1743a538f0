"""A patient's manage link: see, cancel or move one booking with its manage token.

The token comes with the booking (its answer and the `appointment.created` event); the page calls
with its key (a publishable key may). Whatever the key, a change through the link is a frontend's:
inside the cancellation cut-off it is a 422 `cancellation_window_passed`. The link ends with the
booking: once it is cancelled, moved, checked in, completed or a no-show, the token is a 410
`manage_link_ended`; a token that names no booking of the key's organization is a 404.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import marshmallow as ma

from booking.domain import clock
from booking.services import booking_page
from models import Practitioner, Room, TreatmentType

from . import db, etags, i18n, idempotency
from .auth import actor, organization_id, requires
from .base import Blueprint, Id, Instant, Schema
from .booking_page import PageAppointmentSchema, PageBookingSchema, PublicClinicSchema, patient_booking
from .i18n import Direction

blp = Blueprint(
    "manage",
    __name__,
    url_prefix="/v1/manage",
    description="Patients' manage links: see, cancel or move a booking with its manage token",
)


class ManagePolicySchema(ma.Schema):
    cancellation_cutoff_hours = ma.fields.Integer(
        metadata={"description": "Cancelling or moving through the link closes this long before the start"}
    )
    min_notice_minutes = ma.fields.Integer()
    grid_minutes = ma.fields.Integer()
    horizon_days = ma.fields.Integer()
    same_day_booking = ma.fields.Boolean()


class ManagedAppointmentSchema(PageAppointmentSchema):
    treatment_type_name = ma.fields.String()
    practitioner_name = ma.fields.String()
    room_name = ma.fields.String()


class DisplaySchema(ma.Schema):
    """The booking's times as the patient reads them: their language, the clinic's clock."""

    starts_at = ma.fields.String(
        metadata={"description": "Arrival (numbing begins)", "example": "Tuesday, March 2, 2027, 10:00 AM"}
    )
    procedure_starts_at = ma.fields.String(metadata={"description": "The needling"})
    ends_at = ma.fields.String()
    changeable_until = ma.fields.String(metadata={"description": "The cut-off"})


class ManageSchema(ma.Schema):
    appointment = ma.fields.Nested(ManagedAppointmentSchema)
    clinic = ma.fields.Nested(PublicClinicSchema)
    pre_care = ma.fields.List(
        ma.fields.String(), metadata={"description": "What to do before the visit, in the answer's Content-Language"}
    )
    language = ma.fields.String(
        metadata={
            "description": "The language of the patient-facing text (the Content-Language): the patient's, "
            "else the request's Accept-Language, else en",
            "example": "ar",
        }
    )
    direction = Direction
    display = ma.fields.Nested(DisplaySchema)
    policy = ma.fields.Nested(ManagePolicySchema, metadata={"description": "The effective booking policy"})
    changeable_until = ma.fields.String(
        metadata={
            "format": "date-time",
            "description": "Until when the link may cancel or move the booking (the cut-off), in the clinic's zone",
        }
    )
    changeable = ma.fields.Boolean(metadata={"description": "Whether the cut-off is still ahead"})


class ManageCancelSchema(Schema):
    note = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=1000))


class ManageRescheduleSchema(Schema):
    starts_at = Instant(required=True, metadata={"description": "A slot's starts_at from /v1/availability"})
    procedure_starts_at = Instant()
    clinic_id = Id()
    practitioner_id = Id()
    room_id = Id()


def _view(appointment) -> dict:
    session = db.session()
    who = booking_page.frontend(actor())
    effective = booking_page.effective_policy(session, organization_id(), who, appointment)
    until = appointment.starts_at - timedelta(hours=effective.cancellation_cutoff_hours)
    appointment.treatment_type_name = session.get_one(TreatmentType, appointment.treatment_type_id).name
    appointment.practitioner_name = session.get_one(Practitioner, appointment.practitioner_id).name
    appointment.room_name = session.get_one(Room, appointment.room_id).name
    zone = ZoneInfo(appointment.clinic.timezone)
    text = i18n.text()
    return {
        "id": appointment.id,
        "version": appointment.version,
        "appointment": appointment,
        "clinic": appointment.clinic,
        "pre_care": text.all(booking_page.pre_care(session, appointment)),
        "language": text.language,
        "direction": text.direction,
        "display": {
            name: text.when(clock.shown_in(value, zone))
            for name, value in (
                ("starts_at", appointment.starts_at),
                ("procedure_starts_at", appointment.procedure_starts_at),
                ("ends_at", appointment.ends_at),
                ("changeable_until", until),
            )
        },
        "policy": effective,
        "changeable_until": clock.shown_in(until, zone).isoformat(),
        "changeable": clock.now() < until,
    }


@blp.route("/<token>")
@requires("read", publishable=True)
@blp.response(200, ManageSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
@etags.tagged
def show(token):
    """Show the booking a manage link names, its pre-care instructions and the policy"""
    return _view(_managed(token))


@blp.route("/<token>/cancel", methods=["POST"])
@requires("book", publishable=True)
@blp.arguments(ManageCancelSchema)
@blp.response(200, PageAppointmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
@etags.conditional
@etags.tagged
def cancel(data, token):
    """Cancel the booking (the patient's request), before the cut-off; the link then ends"""
    appointment_id = _managed(token).id
    return booking_page.cancel_managed(
        db.session(), organization_id(), token, actor(), data.get("note"), etags.expected_version(appointment_id)
    )


@blp.route("/<token>/reschedule", methods=["POST"])
@requires("book", publishable=True)
@blp.arguments(ManageRescheduleSchema)
@blp.response(200, PageBookingSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(410, response="GONE")
@etags.conditional
def reschedule(data, token):
    """Move the booking to another slot, before the cut-off

    Every rule and the frontend policy are checked for the new slot. The answer is the new
    booking with its own `manage_token`; the old link ends.
    """
    appointment_id = _managed(token).id
    moved, pre_care = booking_page.reschedule_managed(
        db.session(), organization_id(), token, actor(), data, etags.expected_version(appointment_id)
    )
    idempotency.withhold("manage_token")
    return patient_booking(moved, pre_care)


def _managed(token: str):
    """The booking the link names, the patient's language chosen first: a refusal is in it too."""
    i18n.prefer(booking_page.patient_language(db.session(), organization_id(), token))
    return booking_page.managed(db.session(), organization_id(), token)
