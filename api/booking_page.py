"""What a booking page calls with a publishable key (`pk_...`): the bookable clinics, treatment
types and practitioners with their public fields only, a hold for a visitor, and booking that hold
with its hold token while registering the patient. Availability is /v1/availability."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.services import booking_links, booking_page

from . import db, etags, i18n, idempotency
from .auth import actor, organization_id, requires
from .base import Blueprint, ClinicInstant, Name, Schema, Secret, SecretWithheld
from .clinics import OpeningHoursSchema
from .i18n import Direction, Language
from .patients import Phone
from .slots import SlotInputSchema, SlotOutputSchema, slot_request

blp = Blueprint(
    "booking_page",
    __name__,
    url_prefix="/v1/booking",
    description="A booking page's calls (a publishable key may make these): public fields only",
)


class PublicClinicSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    timezone = ma.fields.String(metadata={"description": "IANA zone: every instant of the clinic is shown in it"})
    address = ma.fields.String(allow_none=True)
    opening_hours = ma.fields.List(ma.fields.Nested(OpeningHoursSchema))


class PublicTreatmentTypeSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": ["consultation", "microneedling", "review"]})
    numbing_minutes = ma.fields.Integer(metadata={"description": "From arrival to the needling: the cream works"})
    prep_minutes = ma.fields.Integer(metadata={"description": "Applying the numbing cream, on arrival"})
    procedure_minutes = ma.fields.Integer()
    aftercare_minutes = ma.fields.Integer(metadata={"description": "Serum and aftercare, after the procedure"})
    allowed_areas = ma.fields.List(ma.fields.String())


class PublicPractitionerSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    clinic_ids = ma.fields.List(ma.fields.String(), metadata={"description": "The bookable clinics they work at"})
    treatment_type_ids = ma.fields.List(
        ma.fields.String(), metadata={"description": "The bookable treatment types they perform"}
    )


def _listing(item: type[ma.Schema]) -> type[ma.Schema]:
    return type(f"{item.__name__.removesuffix('Schema')}ListSchema", (ma.Schema,), {
        "data": ma.fields.List(ma.fields.Nested(item), required=True)
    })  # fmt: skip


PatientToken = ma.fields.String(
    validate=ma.validate.Length(min=1, max=100),
    metadata={
        "description": "A patient's booking link token (bl_..., from the link the clinic sent them): book as that "
        "patient, every rule checked for them, instead of as a new patient"
    },
)


class PageHoldInputSchema(SlotInputSchema):
    patient_token = PatientToken
    hold_minutes = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1),
        metadata={"description": "How long to hold; default the policy's hold_minutes, at most its max_hold_minutes"},
    )


class PageHoldSchema(SlotOutputSchema):
    id = ma.fields.String()
    expires_at = ClinicInstant(metadata={"description": "When the slot is let go unless booked: the countdown"})
    hold_token = Secret("The token that alone books this hold (POST /v1/booking/appointments)")
    secret_withheld = SecretWithheld()


class NewPatientSchema(Schema):
    name = Name(required=True)
    email = ma.fields.Email(required=True)
    phone = Phone
    language = Language
    accept_terms = ma.fields.Boolean(
        required=True, metadata={"description": "The patient accepts the clinic's terms: must be true to book"}
    )


class PageBookingInputSchema(Schema):
    hold_token = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=100), metadata={"description": "From the hold"}
    )
    patient = ma.fields.Nested(
        NewPatientSchema,
        metadata={"description": "Registered as it is booked; required unless `patient_token` is sent"},
    )
    patient_token = PatientToken
    area = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=40),
        metadata={"description": "Treatment area, from the type's allowed_areas"},
    )

    @ma.validates_schema
    def _one_patient(self, data, **kwargs):
        if "patient" in data and "patient_token" in data:
            raise ma.ValidationError("Send the new patient's details or a patient_token, not both.", "patient_token")
        if "patient" not in data and "patient_token" not in data:
            raise ma.ValidationError(["Missing data for required field."], "patient")


class PageAppointmentSchema(SlotOutputSchema):
    id = ma.fields.String()
    patient_id = ma.fields.String(metadata={"description": "The patient registered by this booking"})
    area = ma.fields.String(allow_none=True)
    status = ma.fields.String()


class PageBookingSchema(ma.Schema):
    appointment = ma.fields.Nested(PageAppointmentSchema)
    manage_token = Secret(
        "The patient's manage link token: GET /v1/manage/{token} shows, cancels and reschedules the booking"
    )
    pre_care = ma.fields.List(
        ma.fields.String(), metadata={"description": "What to do before the visit, in the answer's Content-Language"}
    )
    language = ma.fields.String(
        metadata={"description": "The language of the patient-facing text (the Content-Language)", "example": "ar"}
    )
    direction = Direction
    secret_withheld = SecretWithheld()


class NoArgs(Schema):
    """None: a mistyped or unsupported query parameter (`updated_since`, `cursor`) is a 422, not ignored."""


@blp.route("/clinics")
@requires("read", publishable=True)
@blp.arguments(NoArgs, location="query")
@blp.response(200, _listing(PublicClinicSchema))
def clinics(_args):
    """List the clinics a booking page may book (public fields)"""
    return {"data": booking_page.bookable_clinics(db.session(), organization_id(), actor())}


@blp.route("/treatment-types")
@requires("read", publishable=True)
@blp.arguments(NoArgs, location="query")
@blp.response(200, _listing(PublicTreatmentTypeSchema))
def treatment_types(_args):
    """List the treatment types bookable online, with the durations a patient is shown"""
    return {"data": booking_page.bookable_treatment_types(db.session(), organization_id(), actor())}


@blp.route("/practitioners")
@requires("read", publishable=True)
@blp.arguments(NoArgs, location="query")
@blp.response(200, _listing(PublicPractitionerSchema))
def practitioners(_args):
    """List the practitioners bookable online, with their bookable clinics and treatment types"""
    return {"data": booking_page.bookable_practitioners(db.session(), organization_id(), actor())}


@blp.route("/holds")
class PageHolds(MethodView):
    @requires("book", publishable=True)
    @blp.arguments(PageHoldInputSchema)
    @blp.response(201, PageHoldSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(410, response="GONE")
    def post(self, data):
        """Hold a slot for a visitor who registers as they book it

        Checked against every rule as a first visit (a microneedling session needs a consultation
        first: `consultation_required`) and the booking policy; with `patient_token` (a patient's
        booking link), as that patient's, their consultation, interval and course counting. The
        answer's `hold_token` alone books the hold; it is shown once.
        """
        hold_minutes, patient_token = data.pop("hold_minutes", None), data.pop("patient_token", None)
        request = slot_request({**data, "patient_id": None})
        hold = booking_page.place_hold(db.session(), organization_id(), request, actor(), hold_minutes, patient_token)
        idempotency.withhold("hold_token")
        return hold


@blp.route("/appointments")
class PageAppointments(MethodView):
    @requires("book", publishable=True)
    @blp.arguments(PageBookingInputSchema)
    @blp.response(201, PageBookingSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(410, response="GONE")
    def post(self, data):
        """Book a hold with its hold token, registering the patient

        The patient (name, e-mail, phone read as the patients API reads it, `accept_terms: true`)
        is registered and the hold booked for them in one transaction, every rule checked again.
        With `patient_token` (a patient's booking link) instead, the hold is booked for the link's
        patient; a hold placed with a link is booked with the same link only.
        The answer carries the patient's `manage_token` (shown once; the `appointment.created`
        event carries it too) and the pre-care instructions.
        """
        session, org = db.session(), organization_id()
        if "patient_token" in data:  # the link's patient's language wins
            i18n.prefer(booking_links.patient_language(session, org, data["patient_token"]))
        else:  # the registering patient's
            i18n.prefer(data["patient"].get("language"))
        appointment, pre_care = booking_page.book_hold(
            session,
            org,
            data["hold_token"],
            data.get("patient"),
            actor(),
            area=data.get("area"),
            patient_token=data.get("patient_token"),
        )
        idempotency.withhold("manage_token")
        return patient_booking(appointment, pre_care)


class InvitedSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The booking link's id"})
    first_name = ma.fields.String(metadata={"description": "To greet the patient: nothing else of them is shown"})
    treatment_type_id = ma.fields.String(
        allow_none=True, metadata={"description": "The treatment the clinic suggests (preselect it)"}
    )
    expires_at = ma.fields.AwareDateTime()
    language = ma.fields.String(metadata={"description": "The patient's language, else the request's, else en"})
    direction = Direction


@blp.route("/links/<link_token>")
@requires("read", publishable=True)
@blp.response(200, InvitedSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(410, response="GONE")
@etags.tagged
def invited(link_token):
    """Greet the patient a booking link names (their first name only)

    The page then books as them with `patient_token`. A token that names no link of the key's
    organization is a 404; an expired or revoked link a 410 `booking_link_ended`.
    """
    session, org = db.session(), organization_id()
    i18n.prefer(booking_links.patient_language(session, org, link_token))
    found = booking_links.invited(session, org, link_token).shown()
    text = i18n.text()
    return {**found, "language": text.language, "direction": text.direction}


def patient_booking(appointment, pre_care: list[str]) -> dict:
    """A booking as its patient reads it: the instructions in their language, its direction."""
    text = i18n.text()
    return {
        "appointment": appointment,
        "manage_token": appointment.manage_token,
        "pre_care": text.all(pre_care),
        "language": text.language,
        "direction": text.direction,
    }
