"""Course plans: a course's remaining sessions planned into free slots (issue 17)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import marshmallow as ma

from booking.services import course_plans, patients
from models import Course

from . import db
from .auth import actor, organization_id, requires
from .availability import settings
from .base import Blueprint, Id, Instant, LocalTime, Schema, get_or_404
from .errors import _rfc3339
from .slots import SlotOutputSchema

blp = Blueprint("course_plans", __name__, url_prefix="/v1", description="Course plans: a whole course in one go")

PLAN_CODES = (
    *(refusal.code for refusal in patients.PATIENT_REFUSALS),
    "too_far_ahead",
    "no_slot",
    "previous_not_placed",
)


class PlanInputSchema(Schema):
    clinic_ids = ma.fields.List(Id(), metadata={"description": "Only these clinics; omit for every clinic"})
    practitioner_id = Id(metadata={"description": "Only this practitioner's slots"})
    weekdays = ma.fields.List(
        ma.fields.Integer(validate=ma.validate.Range(1, 7)),
        metadata={"description": "ISO weekdays, 1 Monday to 7 Sunday, in the clinic's zone; omit for any"},
    )
    time_from = LocalTime(metadata={"description": "Sessions starting at or after this local time of day"})
    time_to = LocalTime(end_of_day=True, metadata={"description": "Sessions starting before this local time of day"})
    order = ma.fields.String(
        load_default="earliest",
        validate=ma.validate.OneOf(("earliest", "evening")),
        metadata={"description": "The first session: the earliest, or the latest in the day (rule 9)"},
    )
    sessions = ma.fields.Integer(
        validate=ma.validate.Range(1, 20), metadata={"description": "How many of the remaining sessions to plan"}
    )
    start = Instant(metadata={"description": "Plan from this instant (default now)"})

    @ma.validates_schema
    def _window(self, data, **kwargs):
        time_from, time_to = data.get("time_from"), data.get("time_to")
        if time_from is not None and time_to is not None and time_to <= time_from:
            raise ma.ValidationError("Must be after time_from.", "time_to")


class PlanReasonSchema(ma.Schema):
    code = ma.fields.String(validate=ma.validate.OneOf(PLAN_CODES), required=True)
    detail = ma.fields.String(allow_none=True)
    earliest_start = ma.fields.String(
        allow_none=True, metadata={"description": "When the rule allows the session", "format": "date-time"}
    )


class PlannedSessionSchema(ma.Schema):
    number = ma.fields.Integer(required=True, metadata={"description": "The session's number in the course"})
    status = ma.fields.String(validate=ma.validate.OneOf(("planned", "unplaced")), required=True)
    slot = ma.fields.Nested(SlotOutputSchema, allow_none=True, required=True)
    reason = ma.fields.Nested(
        PlanReasonSchema, allow_none=True, required=True, metadata={"description": "Why it could not be placed"}
    )


class CoursePlanSchema(ma.Schema):
    course_id = ma.fields.String(required=True)
    patient_id = ma.fields.String(required=True)
    treatment_type_id = ma.fields.String(required=True)
    complete = ma.fields.Boolean(required=True, metadata={"description": "Every session asked for is placed"})
    sessions = ma.fields.List(ma.fields.Nested(PlannedSessionSchema), required=True)


@blp.route("/courses/<course_id>/plan", methods=["POST"])
@requires("book")
@blp.arguments(PlanInputSchema)
@blp.response(200, CoursePlanSchema)
@blp.alt_response(404, response="NOT_FOUND")
def plan(data, course_id):
    """Plan a course's remaining sessions

    Each session in a free slot inside the recommended window after the one before it
    (28-42 calendar days by default), every clinical rule checked as if the sessions before it
    were booked, under the booking policy of the key's channel: the same practitioner as the
    first where possible, then the nearest time of day. A session that cannot be placed is listed
    with the reason and the rule's `earliest_start`. Nothing is held or booked.
    """
    get_or_404(Course, course_id)
    lists: dict[str, Any] = {k: tuple(data.pop(k)) for k in ("clinic_ids", "weekdays") if k in data}
    preferences = course_plans.Preferences(**data, **lists)
    result = course_plans.plan_course(db.session(), organization_id(), course_id, preferences, settings(), actor())
    course = result.course
    return {
        "course_id": course.id,
        "patient_id": course.patient_id,
        "treatment_type_id": course.treatment_type_id,
        "complete": all(s.slot is not None for s in result.sessions),
        "sessions": [_session(s) for s in result.sessions],
    }


def _session(session: course_plans.PlannedSession) -> dict:
    if session.slot is not None:
        slot = {**vars(session.slot), "clinic": session.clinic}
        return {"number": session.number, "status": "planned", "slot": SimpleNamespace(**slot), "reason": None}
    reason = session.reason
    facts = _rfc3339(reason.facts) if reason is not None else {}
    return {
        "number": session.number,
        "status": "unplaced",
        "slot": None,
        "reason": {
            "code": session.code,
            "detail": reason.detail if reason is not None else None,
            "earliest_start": facts.get("earliest_start"),
        },
    }
