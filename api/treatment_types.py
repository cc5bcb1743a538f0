"""Treatment types: consultation, microneedling and review, with their timings and limits."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from booking.domain.vocabulary import KINDS
from booking.services import treatment_types
from models import TreatmentType

from . import db, etags
from .auth import organization_id, requires
from .base import Blueprint, ListArgs, Name, Schema, get_or_404, page_schema, paginate, scoped
from .config import policy_defaults
from .policies import BookingPolicy
from .rooms import CAPABILITY

blp = Blueprint(
    "treatment_types",
    __name__,
    url_prefix="/v1/treatment-types",
    description="Treatment types with numbing, durations, interval and course cap",
)


def _minutes(description: str):
    return ma.fields.Integer(strict=True, metadata={"description": description})


def _optional_days(description: str):
    return ma.fields.Integer(strict=True, allow_none=True, metadata={"description": description})


class TreatmentTypeSchema(Schema):
    """Omitted numbers take the defaults of the kind; every number is checked against its range."""

    id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(KINDS))
    numbing_minutes = _minutes("Numbing cream lead before needling: 20-60 (default 30) for microneedling, else 0")
    prep_minutes = _minutes("Practitioner busy applying the cream (default 5); free afterwards until needling")
    procedure_minutes = _minutes("Needling or consultation time (defaults 30; review 15)")
    aftercare_minutes = _minutes("Serum and aftercare instructions (default 10)")
    turnover_minutes = _minutes("Room cleaning and needle change after the patient leaves (default 10)")
    min_interval_days = _optional_days(
        "Minimum calendar days between two sessions' local dates, 28-365 (default 28): any time on that date"
    )
    recommended_interval_days = _optional_days(
        "Last local date of the follow-up window, in calendar days after the session's (default 42)"
    )
    max_sessions = _optional_days("Most sessions a course of this type may have (default 6)")
    consultation_valid_days = _optional_days("A consultation counts for this many days (default 180)")
    allowed_areas = ma.fields.List(ma.fields.String(), metadata={"example": ["face", "neck"]})
    required_capability = ma.fields.String(
        allow_none=True, validate=CAPABILITY, metadata={"description": "Room capability needed, e.g. needling"}
    )
    booking_policy = BookingPolicy()
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


TreatmentTypePageSchema = page_schema(TreatmentTypeSchema)


@blp.route("")
class TreatmentTypes(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, TreatmentTypePageSchema)
    def get(self, args):
        """List treatment types"""
        return paginate(scoped(TreatmentType), TreatmentType, args)

    @requires("admin")
    @blp.arguments(TreatmentTypeSchema)
    @blp.response(201, TreatmentTypeSchema)
    @etags.tagged
    def post(self, data):
        """Create a treatment type (omitted timings take the kind's defaults)"""
        return treatment_types.create(db.session(), organization_id(), data, policy_defaults(current_app.config))


@blp.route("/<treatment_type_id>")
class TreatmentTypeItem(MethodView):
    @requires("read")
    @blp.response(200, TreatmentTypeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, treatment_type_id):
        """Get a treatment type"""
        return get_or_404(TreatmentType, treatment_type_id, what="treatment type")

    @requires("admin")
    @blp.arguments(TreatmentTypeSchema(partial=True))
    @blp.response(200, TreatmentTypeSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, treatment_type_id):
        """Change a treatment type's name, timings or limits (not its kind)"""
        return treatment_types.update(
            db.session(),
            organization_id(),
            treatment_type_id,
            data,
            etags.expected_version(treatment_type_id),
            policy_defaults(current_app.config),
        )
