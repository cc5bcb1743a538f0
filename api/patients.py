"""Patients, their contraindications as assessed, and their treatment courses."""

from __future__ import annotations

from typing import ClassVar

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView

from booking.domain import clock
from booking.domain.vocabulary import CONTRAINDICATIONS, COURSE_STATUSES, INDICATIONS
from booking.services import courses, patient_records, queries
from booking.services.history import record_past_session
from models import Course, PastSession, Patient

from . import db, etags
from .auth import organization_id, require_staff, requires
from .base import (
    Blueprint,
    Day,
    Id,
    Instant,
    ListArgs,
    Name,
    Schema,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)
from .i18n import Language

blp = Blueprint("patients", __name__, url_prefix="/v1", description="Patients and their treatment courses")

Phone = ma.fields.String(
    load_default=None,
    allow_none=True,
    validate=ma.validate.Length(max=40),
    metadata={
        "description": (
            "As a person writes it (`+44 20 7946 0000`, `(212) 555-0123`); answered as E.164 (`+442079460000`). "
            "A number without +<country code> is read in the country of the organization's clinics, and is a 422 "
            "when they are not all in one country."
        ),
        "example": "+44 20 7946 0000",
    },
)


class ContraindicationSchema(Schema):
    code = ma.fields.String()
    until = ma.fields.Date(
        allow_none=True,
        metadata={
            "description": (
                "A temporary one's end: the first date (the clinic's local date) on which it no longer "
                "applies; null: until resolved"
            )
        },
    )
    recorded_at = ma.fields.AwareDateTime()
    recorded_by = ma.fields.String(allow_none=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    resolved_by = ma.fields.String(allow_none=True)


class TemporaryContraindicationSchema(Schema):
    code = ma.fields.String(required=True, validate=ma.validate.OneOf(CONTRAINDICATIONS))
    until = Day(
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                "The first date on which it no longer applies (sessions on earlier dates are refused); "
                "after today. Null or absent: until resolved"
            )
        },
    )

    @ma.validates("until")
    def _after_today(self, value, **kwargs):
        if value is not None and value <= clock.now().date():
            raise ma.ValidationError(
                "Must be after today: `until` is the first date on which the contraindication no longer applies."
            )


_CODE = {"type": "string", "enum": list(CONTRAINDICATIONS)}


class ContraindicationEntry(ma.fields.Field):
    """One of the contraindications listed on a patient: a code (until resolved), or on input an
    object with the code and `until` (a temporary one). Loaded as patient_records.Listed; dumped
    as the code."""

    # api/conventions.py documents the field per direction.
    openapi_by_direction: ClassVar[dict[str, dict]] = {
        "input": {
            "oneOf": [
                _CODE,
                {
                    "type": "object",
                    "properties": {"code": _CODE, "until": {"type": "string", "format": "date", "nullable": True}},
                    "required": ["code"],
                    "additionalProperties": False,
                    "description": "A temporary contraindication: `until` is the first date it no longer applies",
                },
            ]
        },
        "output": _CODE,
    }

    def _serialize(self, value, attr, obj, **kwargs):
        return value if isinstance(value, str) else value.code

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if value not in CONTRAINDICATIONS:
                raise ma.ValidationError(f"Must be one of: {', '.join(CONTRAINDICATIONS)}.")
            return patient_records.Listed(value)
        if isinstance(value, dict):
            try:
                loaded = TemporaryContraindicationSchema().load(value)
            except ma.ValidationError as error:  # without its partly loaded dict, which List would keep
                raise ma.ValidationError(error.messages) from None
            return patient_records.Listed(loaded["code"], loaded["until"])
        raise ma.ValidationError("A contraindication code, or an object with `code` and `until`.")


class PatientSchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    email = ma.fields.Email(load_default=None, allow_none=True)
    phone = Phone
    date_of_birth = Day(load_default=None, allow_none=True)
    language = Language
    contraindications = ma.fields.List(
        ContraindicationEntry(),
        load_default=list,
        metadata={
            "description": (
                "Active contraindications; the list replaces the active set. A temporary one is given as "
                '`{"code": ..., "until": "YYYY-MM-DD"}` and is active for sessions on dates before `until` '
                "(its history entry shows `until`); answered as the codes active today"
            )
        },
    )
    assessed_by = ma.fields.String(
        load_only=True,
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "Who assessed the contraindications given (recorded with them)"},
    )
    contraindication_history = ma.fields.List(
        ma.fields.Nested(ContraindicationSchema),
        dump_only=True,
        attribute="contraindication_records",
        metadata={"description": "Every contraindication recorded, when and by whom, and when resolved"},
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)

    @ma.validates("contraindications")
    def _unique(self, value, **kwargs):
        if len({entry.code for entry in value}) != len(value):
            raise ma.ValidationError("Contraindications must not repeat.")

    @ma.validates("date_of_birth")
    def _past(self, value, **kwargs):
        if value is not None and value > clock.now().date():
            raise ma.ValidationError("Must not be in the future.")


class PatientListArgs(ListArgs):
    email = ma.fields.Email(load_default=None, metadata={"description": "Exact e-mail address"})


class CourseSchema(Schema):
    id = ma.fields.String(dump_only=True)
    patient_id = ma.fields.String(dump_only=True)
    treatment_type_id = Id(required=True, metadata={"description": "A microneedling treatment type"})
    indication = ma.fields.String(required=True, validate=ma.validate.OneOf(tuple(INDICATIONS)))
    max_sessions = ma.fields.Integer(
        strict=True, validate=ma.validate.Range(1, 20), metadata={"description": "Cap; default from the indication"}
    )
    max_sessions_per_365_days = ma.fields.Integer(
        strict=True,
        allow_none=True,
        validate=ma.validate.Range(1, 12),
        metadata={"description": "Rolling cap (ageing: 2)"},
    )
    status = ma.fields.String(validate=ma.validate.OneOf(COURSE_STATUSES))
    notes = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=5000))
    sessions_completed = ma.fields.Integer(strict=True, dump_only=True)
    next_earliest_start = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class PastSessionSchema(Schema):
    id = ma.fields.String(dump_only=True)
    patient_id = ma.fields.String(dump_only=True)
    treatment_type_id = Id(required=True)
    performed_at = Instant(required=True, metadata={"description": "When it was done; in the past"})
    course_id = Id(load_default=None, allow_none=True)
    provider = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "Where it was done, if elsewhere"},
    )
    notes = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=5000))
    created_at = ma.fields.AwareDateTime(dump_only=True)


class CourseUpdateSchema(CourseSchema):
    class Meta:
        exclude = ("treatment_type_id",)


PatientPageSchema = page_schema(PatientSchema)
PastSessionPageSchema = page_schema(PastSessionSchema)
CoursePageSchema = page_schema(CourseSchema)


@blp.route("/patients")
class Patients(MethodView):
    @requires("read")
    @blp.arguments(PatientListArgs, location="query")
    @blp.response(200, PatientPageSchema)
    def get(self, args):
        """List patients"""
        query = scoped(Patient)
        if args["email"]:
            query = query.where(sa.func.lower(Patient.email) == args["email"].lower())
        return paginate(query, Patient, args)

    @requires("book")
    @blp.arguments(PatientSchema)
    @blp.response(201, PatientSchema)
    @etags.tagged
    def post(self, data):
        """Register a patient

        A frontend key registers a patient without contraindications (403 otherwise): they are
        recorded by a staff key, as assessed.
        """
        if data.get("contraindications"):
            require_staff("record contraindications")
        return patient_records.register(db.session(), organization_id(), data)


@blp.route("/patients/<patient_id>")
class PatientItem(MethodView):
    @requires("read")
    @blp.response(200, PatientSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, patient_id):
        """Get a patient"""
        return get_or_404(Patient, patient_id)

    @requires("book")
    @blp.arguments(PatientSchema(partial=True))
    @blp.response(200, PatientSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, patient_id):
        """Update a patient's contact details or contraindications

        Contraindications are a staff key's to change: a frontend key sending them is a 403.
        """
        if "contraindications" in data or "assessed_by" in data:
            require_staff("change contraindications")
        return patient_records.update(
            db.session(), organization_id(), patient_id, data, etags.expected_version(patient_id)
        )


@blp.route("/patients/<patient_id>/courses")
class PatientCourses(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, CoursePageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, patient_id):
        """List a patient's courses"""
        patient = get_or_404(Patient, patient_id)
        page = paginate(scoped(Course).where(Course.patient_id == patient.id), Course, args)
        page["data"] = [_progress(c) for c in page["data"]]
        return page

    @requires("book")
    @blp.arguments(CourseSchema)
    @blp.response(201, CourseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def post(self, data, patient_id):
        """Open a treatment course (the cap defaults from the indication)

        A patient has at most one active course per treatment type, so that every session
        counts on a cap: opening a second is a 409 `course_already_active` naming the
        active one (`course_id`); complete or close it first.
        """
        return _progress(courses.open_for(db.session(), organization_id(), patient_id, data))


@blp.route("/courses/<course_id>")
class CourseItem(MethodView):
    @requires("read")
    @blp.response(200, CourseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, course_id):
        """Get a course with its progress"""
        return _progress(get_or_404(Course, course_id))

    @requires("book")
    @blp.arguments(CourseUpdateSchema(partial=True))
    @blp.response(200, CourseSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @etags.conditional
    @etags.tagged
    def patch(self, data, course_id):
        """Change a course's indication, cap, status or notes

        Reopening a course (`status: active`) while another of its treatment type is active
        is a 409 `course_already_active` naming that one.
        """
        course = courses.change(db.session(), organization_id(), course_id, data, etags.expected_version(course_id))
        return _progress(course)


def _progress(course: Course) -> Course:
    """Attach the derived `next_earliest_start` for the response."""
    course.next_earliest_start = queries.next_earliest_start(db.session(), course, clock.now())
    return course


@blp.route("/patients/<patient_id>/past-sessions")
class PatientPastSessions(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, PastSessionPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, patient_id):
        """List treatments the patient had before coming here or elsewhere"""
        patient = get_or_404(Patient, patient_id)
        return paginate(scoped(PastSession).where(PastSession.patient_id == patient.id), PastSession, args)

    @requires("book")
    @blp.arguments(PastSessionSchema)
    @blp.response(201, PastSessionSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, data, patient_id):
        """Record a past treatment

        It counts for the minimum interval, the course cap and the consultation
        rule exactly like a session booked here. A microneedling session closer than
        the minimum interval to a booked appointment or live hold of the patient is a
        422 `interval_too_short`: `conflicts` names each (`appointment_id` or `hold_id`)
        with the `earliest_start` it could be moved to; reschedule or cancel it first.
        Only a staff key records one (a frontend key is a 403: it would satisfy the consultation rule itself).
        """
        require_staff("record past sessions or consultations done elsewhere")
        return record_past_session(db.session(), organization_id(), patient_id, **data)
