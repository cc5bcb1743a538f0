"""Practitioners, the clinics they work at, their weekly hours and time off."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import abort

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.domain.weekly import Shift, check_week, practitioner_zone
from models import Clinic, Practitioner, TimeOff, TreatmentType, WorkingHours

from . import db, etags
from .auth import organization_id, requires
from .base import (
    Blueprint,
    Id,
    Instant,
    ListArgs,
    LocalTime,
    Name,
    Schema,
    get_for_update,
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


def _load_all(model, ids: list[str], field: str) -> list:
    """The caller's objects for `ids`, or a 422 naming those that do not exist."""
    ids = list(dict.fromkeys(ids))
    found = {o.id: o for o in db.session().scalars(scoped(model).where(model.id.in_(ids)))} if ids else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput({field: [f"Unknown id: {', '.join(missing)}."]})
    return [found[i] for i in ids]


def _shifts(entries, zones: dict[str, str]) -> list[Shift]:
    return [Shift(e.weekday, e.start_minute, e.end_minute, e.clinic_id, zones[e.clinic_id]) for e in entries]


def check_practitioner_weeks(clinic_id: str, field: str) -> None:
    """Re-check the weeks of everyone at a clinic (after its time zone changed)."""
    session = db.session()
    session.flush()
    for practitioner in session.scalars(scoped(Practitioner).where(Practitioner.clinics.any(Clinic.id == clinic_id))):
        zones = {c.id: c.timezone for c in practitioner.clinics}
        try:
            check_week(_shifts(practitioner.working_hours, zones))
        except InvalidInput as exc:
            raise InvalidInput(
                {field: [f"Practitioner {practitioner.id}'s hours would overlap: {exc.errors}"]}
            ) from exc


def apply(practitioner: Practitioner, data: dict) -> Practitioner:
    if "clinic_ids" in data:
        clinics = _load_all(Clinic, data["clinic_ids"], "clinic_ids")
        kept = {c.id for c in clinics}
        stranded = sorted({h.clinic_id for h in practitioner.working_hours} - kept)
        if stranded:
            raise InvalidInput(
                {"clinic_ids": [f"Still has working hours at {', '.join(stranded)}; replace the working hours first."]}
            )
        practitioner.clinics = clinics
    if "treatment_type_ids" in data:
        practitioner.treatment_types = _load_all(TreatmentType, data["treatment_type_ids"], "treatment_type_ids")
    for field in ("name", "email"):
        if field in data:
            setattr(practitioner, field, data[field])
    return practitioner


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
        practitioner = apply(Practitioner(organization_id=organization_id()), data)
        db.session().add(practitioner)
        db.session().flush()
        return practitioner


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
        practitioner = apply(get_for_update(Practitioner, practitioner_id), data)
        db.session().flush()
        return practitioner

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    def delete(self, practitioner_id):
        """Archive a practitioner"""
        get_for_update(Practitioner, practitioner_id).archived_at = clock.now()
        db.session().flush()


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
        practitioner = get_or_404(Practitioner, practitioner_id)
        zones = {c.id: c.timezone for c in practitioner.clinics}
        unknown = {
            str(i): {"clinic_id": ["The practitioner does not work at this clinic."]}
            for i, e in enumerate(entries)
            if e["clinic_id"] not in zones
        }
        if unknown:
            raise InvalidInput(unknown)
        hours = [WorkingHours(**e) for e in entries]
        check_week(_shifts(hours, zones))
        practitioner.working_hours = hours
        practitioner.updated_at = clock.now()
        db.session().flush()
        return practitioner.working_hours


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
        practitioner = get_or_404(Practitioner, practitioner_id)
        time_off = TimeOff(organization_id=organization_id(), practitioner_id=practitioner.id, **data)
        db.session().add(time_off)
        db.session().flush()
        return _local(time_off, practitioner_zone(practitioner.clinic_zones))


@blp.route("/<practitioner_id>/time-off/<time_off_id>")
class PractitionerTimeOffItem(MethodView):
    @requires("read")
    @blp.response(200, TimeOffSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, practitioner_id, time_off_id):
        """Get one period of time off"""
        practitioner, time_off = _time_off(practitioner_id, time_off_id)
        return _local(time_off, practitioner_zone(practitioner.clinic_zones))

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    def delete(self, practitioner_id, time_off_id):
        """Remove time off"""
        _, time_off = _time_off(practitioner_id, time_off_id, lock=True)
        etags.check_if_match(time_off)
        db.session().delete(time_off)
        db.session().flush()


def _time_off(practitioner_id: str, time_off_id: str, *, lock: bool = False):
    practitioner = get_or_404(Practitioner, practitioner_id)
    time_off = get_or_404(TimeOff, time_off_id, what="time off", lock=lock)
    if time_off.practitioner_id != practitioner.id:
        abort(404, message=f"No time off with id '{time_off_id}'.")
    return practitioner, time_off


def _local(time_off: TimeOff, zone: ZoneInfo) -> dict:
    return {
        "id": time_off.id,
        "starts_at": time_off.starts_at.astimezone(zone),
        "ends_at": time_off.ends_at.astimezone(zone),
        "reason": time_off.reason,
        "version": time_off.version,
    }  # for the ETag; not a field of the schema
