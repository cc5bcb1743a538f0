"""Clinics: time zone, weekly opening hours and closure days."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from booking.domain.errors import InUse, InvalidInput
from booking.domain.weekly import Shift, check_timezone, check_week
from booking.services import devices
from models import Clinic, Closure, OpeningHours, Practitioner, Room, utcnow

from . import db, etags
from .auth import organization_id, requires
from .base import (
    Blueprint,
    Day,
    ListArgs,
    LocalTime,
    Name,
    Schema,
    Whole,
    get_for_update,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)

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
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


ClinicPageSchema = page_schema(ClinicSchema)


def apply(clinic: Clinic, data: dict) -> Clinic:
    """Set fields, replacing the nested lists wholesale, after checking the week."""
    if "opening_hours" in data:
        zone = data.get("timezone", clinic.timezone)
        try:
            check_week(
                [Shift(h["weekday"], h["start_minute"], h["end_minute"], zone=zone) for h in data["opening_hours"]]
            )
        except InvalidInput as exc:
            raise InvalidInput({"opening_hours": exc.errors}) from exc
        clinic.opening_hours = [OpeningHours(**h) for h in data["opening_hours"]]
    if "closures" in data:
        clinic.closures = [Closure(**c) for c in data["closures"]]
    for field in ("name", "timezone", "address", "numbing_area_capacity", "device_count"):
        if field in data:
            setattr(clinic, field, data[field])
    return clinic


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
        clinic = apply(Clinic(organization_id=organization_id()), data)
        db.session().add(clinic)
        db.session().flush()
        return clinic


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
        clinic = get_for_update(Clinic, clinic_id)
        if "device_count" in data and data["device_count"] != clinic.device_count:
            devices.set_device_count(db.session(), clinic, data["device_count"], clock.now())
        clinic = apply(clinic, data)
        if "timezone" in data:
            from booking.services.practitioners import recheck_weeks_at

            recheck_weeks_at(db.session(), organization_id(), clinic.id, field="timezone")
        db.session().flush()
        return clinic

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @etags.conditional
    def delete(self, clinic_id):
        """Archive a clinic that has no rooms or practitioners left"""
        clinic = get_for_update(Clinic, clinic_id)
        session = db.session()
        rooms = session.scalars(scoped(Room).where(Room.clinic_id == clinic.id)).all()
        staff = session.scalars(scoped(Practitioner).where(Practitioner.clinics.any(Clinic.id == clinic.id))).all()
        if rooms or staff:
            raise InUse(
                "Archive the clinic's rooms and move its practitioners first.",
                room_ids=[r.id for r in rooms],
                practitioner_ids=[p.id for p in staff],
            )
        clinic.archived_at = utcnow()
        session.flush()
