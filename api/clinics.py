"""Clinics: time zone, weekly opening hours and closure days."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from booking.domain.weekly import check_timezone
from booking.services import clinics
from models import Clinic

from . import db, etags
from .auth import organization_id, requires
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
