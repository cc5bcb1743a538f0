"""Practitioners, the clinics they work at, their weekly hours and time off."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from booking.domain.weekly import practitioner_zone
from booking.services import practitioners
from models import Practitioner, TimeOff

from . import db, etags
from .auth import organization_id, requires
from .base import (
    GONE,
    Blueprint,
    Id,
    Instant,
    ListArgs,
    LocalTime,
    Name,
    Schema,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)

blp = Blueprint(
    "practitioners",
    __name__,
    url_prefix="/v1/practitioners",
    description="Practitioners, their weekly hours per clinic and time off",
)


class PractitionerSchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    email = ma.fields.Email(load_default=None, allow_none=True)
    clinic_ids = ma.fields.List(Id(), required=True, validate=ma.validate.Length(min=1))
    treatment_type_ids = ma.fields.List(
        Id(), load_default=list, metadata={"description": "Treatment types they are qualified for"}
    )
    bookable_online = ma.fields.Boolean(
        load_default=True, metadata={"description": "false: a frontend key cannot book them (a staff key still can)"}
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class WorkingHoursSchema(Schema):
    clinic_id = Id(required=True)
    weekday = ma.fields.Integer(
        strict=True,
        required=True,
        validate=ma.validate.Range(0, 6),
        metadata={"description": "0 = Monday ... 6 = Sunday"},
    )
    start = LocalTime(
        required=True, attribute="start_minute", metadata={"description": "Local time in the clinic's zone"}
    )
    end = LocalTime(required=True, end_of_day=True, attribute="end_minute")


class TimeOffSchema(Schema):
    id = ma.fields.String(dump_only=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    reason = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ma.ValidationError("Must be after starts_at.", "ends_at")


class TimeOffListArgs(ListArgs):
    start = Instant(load_default=None, metadata={"description": "Only time off ending after this"})
    end = Instant(load_default=None, metadata={"description": "Only time off starting before this"})


PractitionerPageSchema = page_schema(PractitionerSchema)
TimeOffPageSchema = page_schema(TimeOffSchema)


@blp.route("")
class Practitioners(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, PractitionerPageSchema)
    def get(self, args):
        """List practitioners"""
        return paginate(scoped(Practitioner), Practitioner, args)

    @requires("admin")
    @blp.arguments(PractitionerSchema)
    @blp.response(201, PractitionerSchema)
    @etags.tagged
    def post(self, data):
        """Create a practitioner at one or more clinics"""
        return practitioners.create(db.session(), organization_id(), data)


@blp.route("/<practitioner_id>")
class PractitionerItem(MethodView):
    @requires("read")
    @blp.response(200, PractitionerSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, practitioner_id):
        """Get a practitioner"""
        return get_or_404(Practitioner, practitioner_id)

    @requires("admin")
    @blp.arguments(PractitionerSchema(partial=True))
    @blp.response(200, PractitionerSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, practitioner_id):
        """Update a practitioner; lists given replace the old ones"""
        return practitioners.update(
            db.session(), organization_id(), practitioner_id, data, etags.expected_version(practitioner_id)
        )

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, practitioner_id):
        """Archive a practitioner"""
        practitioners.archive(db.session(), organization_id(), practitioner_id, etags.expected_version(practitioner_id))


@blp.route("/<practitioner_id>/working-hours")
class PractitionerWorkingHours(MethodView):
    @requires("read")
    @blp.response(200, WorkingHoursSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, practitioner_id):
        """Get a practitioner's weekly hours at every clinic"""
        return get_or_404(Practitioner, practitioner_id).working_hours

    @requires("admin")
    @blp.arguments(WorkingHoursSchema(many=True))
    @blp.response(200, WorkingHoursSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, entries, practitioner_id):
        """Replace a practitioner's whole week

        Times are local to each clinic. No two shifts may overlap in real time,
        also across clinics in different time zones.
        """
        return practitioners.replace_week(db.session(), organization_id(), practitioner_id, entries)


@blp.route("/<practitioner_id>/time-off")
class PractitionerTimeOff(MethodView):
    @requires("read")
    @blp.arguments(TimeOffListArgs, location="query")
    @blp.response(200, TimeOffPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, practitioner_id):
        """List a practitioner's time off, optionally within a range"""
        practitioner = get_or_404(Practitioner, practitioner_id)
        query = scoped(TimeOff).where(TimeOff.practitioner_id == practitioner.id)
        if args["start"] is not None:
            query = query.where(TimeOff.ends_at > args["start"])
        if args["end"] is not None:
            query = query.where(TimeOff.starts_at < args["end"])
        page = paginate(query, TimeOff, args)
        zone = practitioner_zone(practitioner.clinic_zones)
        page["data"] = [_local(t, zone) for t in page["data"]]
        return page

    @requires("admin")
    @blp.arguments(TimeOffSchema)
    @blp.response(201, TimeOffSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def post(self, data, practitioner_id):
        """Add time off"""
        practitioner, time_off = practitioners.add_time_off(db.session(), organization_id(), practitioner_id, data)
        return _local(time_off, practitioner_zone(practitioner.clinic_zones))


@blp.route("/<practitioner_id>/time-off/<time_off_id>")
class PractitionerTimeOffItem(MethodView):
    @requires("read")
    @blp.response(200, TimeOffSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, practitioner_id, time_off_id):
        """Get one period of time off"""
        practitioner, time_off = practitioners.time_off(db.session(), organization_id(), practitioner_id, time_off_id)
        return _local(time_off, practitioner_zone(practitioner.clinic_zones))

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, practitioner_id, time_off_id):
        """Remove time off"""
        practitioners.remove_time_off(
            db.session(), organization_id(), practitioner_id, time_off_id, etags.expected_version(time_off_id)
        )


def _local(time_off: TimeOff, zone: ZoneInfo) -> dict:
    return {
        "id": time_off.id,
        "starts_at": clock.shown_in(time_off.starts_at, zone),
        "ends_at": clock.shown_in(time_off.ends_at, zone),
        "reason": time_off.reason,
        "version": time_off.version,
    }  # for the ETag; not a field of the schema
