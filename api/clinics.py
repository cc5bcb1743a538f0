"""Clinics: time zone, weekly opening hours and closure days."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from booking.domain import clock
from booking.domain.weekly import check_timezone
from booking.services import clinics
from booking.services import day_sheet as day_sheets
from models import Clinic

from . import db, etags
from .auth import organization_id, require_staff, requires
from .base import (
    GONE,
    Blueprint,
    Day,
    ListArgs,
    LocalTime,
    Name,
    Schema,
    Whole,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)
from .config import policy_defaults
from .policies import BookingPolicy

blp = Blueprint("clinics", __name__, url_prefix="/v1/clinics", description="Clinics of the organization")


def _valid_zone(name: str) -> None:
    try:
        check_timezone(name)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from exc


class OpeningHoursSchema(Schema):
    weekday = ma.fields.Integer(
        strict=True,
        required=True,
        validate=ma.validate.Range(0, 6),
        metadata={"description": "0 = Monday ... 6 = Sunday"},
    )
    start = LocalTime(required=True, attribute="start_minute")
    end = LocalTime(required=True, end_of_day=True, attribute="end_minute")


class ClosureSchema(Schema):
    start_date = Day(required=True, metadata={"description": "First closed local day"})
    end_date = Day(required=True, metadata={"description": "Last closed local day (inclusive)"})
    reason = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if "start_date" in data and "end_date" in data and data["end_date"] < data["start_date"]:
            raise ma.ValidationError("Must not be before start_date.", "end_date")


class ClinicSchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    timezone = ma.fields.String(
        required=True, validate=_valid_zone, metadata={"description": "IANA time zone", "example": "Europe/London"}
    )
    address = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))
    numbing_area_capacity = ma.fields.Integer(
        strict=True,
        load_default=0,
        validate=ma.validate.Range(0, 50),
        metadata={"description": "0: patients numb in the treatment room; N: a numbing area with N chairs"},
    )
    device_count = ma.fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(0, 100),
        metadata={"description": "null: devices not counted; N: at most N needlings at once"},
    )
    opening_hours = ma.fields.List(
        Whole(OpeningHoursSchema),
        load_default=list,
        metadata={"description": "Weekly local hours; several per weekday allowed"},
    )
    closures = ma.fields.List(Whole(ClosureSchema), load_default=list)
    booking_policy = BookingPolicy()
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


ClinicPageSchema = page_schema(ClinicSchema)


@blp.route("")
class Clinics(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, ClinicPageSchema)
    def get(self, args):
        """List clinics"""
        return paginate(scoped(Clinic), Clinic, args)

    @requires("admin")
    @blp.arguments(ClinicSchema)
    @blp.response(201, ClinicSchema)
    @etags.tagged
    def post(self, data):
        """Create a clinic"""
        return clinics.create(db.session(), organization_id(), data, policy_defaults(current_app.config))


@blp.route("/<clinic_id>")
class ClinicItem(MethodView):
    @requires("read")
    @blp.response(200, ClinicSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, clinic_id):
        """Get a clinic"""
        return get_or_404(Clinic, clinic_id)

    @requires("admin")
    @blp.arguments(ClinicSchema(partial=True))
    @blp.response(200, ClinicSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @etags.conditional
    @etags.tagged
    def patch(self, data, clinic_id):
        """Update a clinic; lists given replace the old ones

        Changing `device_count` gives every live booking at the clinic its device unit at
        once; a count that booked needlings already exceed is a 409 `device_count_too_low`
        whose `conflicts` name them (`devices_needed` says how many overlap). A 409
        `bookings_changing` means a booking there was being changed at that instant: retry.
        """
        return clinics.update(
            db.session(),
            organization_id(),
            clinic_id,
            data,
            etags.expected_version(clinic_id),
            policy_defaults(current_app.config),
        )

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, clinic_id):
        """Archive a clinic that has no rooms or practitioners left"""
        clinics.archive(db.session(), organization_id(), clinic_id, etags.expected_version(clinic_id))


class DaySheetArgs(Schema):
    date = Day(required=True, metadata={"description": "The clinic's local date, YYYY-MM-DD"})


class PhaseSchema(ma.Schema):
    name = ma.fields.String(
        metadata={
            "enum": ["arrival", "numbing_application", "numbing", "needling", "procedure", "aftercare", "turnover"],
            "description": "arrival (an instant), numbing_application (the practitioner applies the cream), numbing "
            "(the cream works: the practitioner is free), needling (or procedure, for a consultation or review), "
            "aftercare (serum and instructions), turnover (the room is cleaned; the patient has left)",
        }
    )
    starts_at = ma.fields.String(metadata={"format": "date-time"})
    ends_at = ma.fields.String(metadata={"format": "date-time"})
    practitioner_busy = ma.fields.Boolean()
    place = ma.fields.String(metadata={"enum": ["room", "numbing_area"]})


class NamedSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()


class DaySheetTreatmentSchema(NamedSchema):
    kind = ma.fields.String()


class VisitSchema(ma.Schema):
    appointment_id = ma.fields.String()
    status = ma.fields.String()
    starts_at = ma.fields.String(metadata={"format": "date-time"})
    procedure_starts_at = ma.fields.String(metadata={"format": "date-time"})
    ends_at = ma.fields.String(metadata={"format": "date-time"})
    patient = ma.fields.Nested(NamedSchema)
    practitioner = ma.fields.Nested(NamedSchema)
    room = ma.fields.Nested(NamedSchema)
    treatment_type = ma.fields.Nested(DaySheetTreatmentSchema)
    area = ma.fields.String(allow_none=True)
    phases = ma.fields.List(ma.fields.Nested(PhaseSchema))


class DaySheetSchema(ma.Schema):
    clinic_id = ma.fields.String()
    timezone = ma.fields.String()
    date = ma.fields.Date()
    starts_at = ma.fields.String(metadata={"format": "date-time", "description": "The date's first instant"})
    ends_at = ma.fields.String(
        metadata={
            "format": "date-time",
            "description": "The next date's first instant (23 or 25 hours on a DST change)",
        }
    )
    visits = ma.fields.List(ma.fields.Nested(VisitSchema))


def _sheet(sheet) -> dict:
    zone = ZoneInfo(sheet.clinic.timezone)

    def local(instant):
        return clock.shown_in(instant, zone).isoformat()

    return {
        "clinic_id": sheet.clinic.id,
        "timezone": sheet.clinic.timezone,
        "date": sheet.date,
        "starts_at": local(sheet.starts_at),
        "ends_at": local(sheet.ends_at),
        "visits": [
            {
                "appointment_id": v.appointment.id,
                "status": v.appointment.status,
                "starts_at": local(v.appointment.starts_at),
                "procedure_starts_at": local(v.appointment.procedure_starts_at),
                "ends_at": local(v.appointment.ends_at),
                "patient": v.patient,
                "practitioner": v.practitioner,
                "room": v.room,
                "treatment_type": v.treatment_type,
                "area": v.appointment.area,
                "phases": [{**vars(p), "starts_at": local(p.starts_at), "ends_at": local(p.ends_at)} for p in v.phases],
            }
            for v in sheet.visits
        ],
    }


@blp.route("/<clinic_id>/day-sheet")
@requires("read")
@blp.arguments(DaySheetArgs, location="query")
@blp.response(200, DaySheetSchema)
@blp.alt_response(404, response="NOT_FOUND")
def day_sheet(args, clinic_id):
    """The front desk's day: every visit at the clinic on a local date, with its phases (staff keys)

    Patients' names, treatment, practitioner, room and each visit's phases (arrival, numbing
    application, numbing, needling, aftercare, turnover) with whether the practitioner is needed,
    in the clinic's zone; the date runs from its first local instant to the next date's. Cancelled
    visits are left out. A frontend key is refused (403): names are the front desk's to read.
    """
    require_staff("read the day sheet")
    return _sheet(day_sheets.day_sheet(db.session(), organization_id(), clinic_id, args["date"]))
