"""Course plans: a course's remaining sessions planned into free slots, held and confirmed (issue 17)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from booking.services import course_plans, patients
from models import COURSE_PLAN_STATUSES, Course, CoursePlan

from . import db, etags
from .auth import actor, organization_id, requires
from .availability import settings
from .base import Blueprint, ClinicInstant, Id, Instant, LocalTime, Schema, get_or_404
from .errors import _rfc3339
from .holds import HoldSchema
from .slots import SlotOutputSchema

RELEASED = (
    "Each hold reads on with `status: released` and the plan with `status: released`; nothing is claimed from "
    "then on, and a second DELETE changes nothing. A confirmed plan is a 409 `invalid_transition`: cancel its "
    "appointments one by one."
)

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
    hold = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Hold every session at once, all or nothing, with one expiry: the answer is then a "
            "course plan (`id`), confirmed with POST /v1/course-plans/{id}/confirm. A session that cannot be "
            "placed, or a slot taken meanwhile, is a 409 naming the session; nothing is held"
        },
    )
    hold_minutes = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1),
        metadata={
            "description": "With hold: how long the holds last; default the booking policy's hold_minutes, "
            "at most its max_hold_minutes (the shortest of the plan's clinics)"
        },
    )

    @ma.validates_schema
    def _window(self, data, **kwargs):
        time_from, time_to = data.get("time_from"), data.get("time_to")
        if time_from is not None and time_to is not None and time_to <= time_from:
            raise ma.ValidationError("Must be after time_from.", "time_to")
        if "hold_minutes" in data and not data.get("hold"):
            raise ma.ValidationError("Only with hold: true.", "hold_minutes")


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
    hold = ma.fields.Nested(
        HoldSchema,
        allow_none=True,
        required=True,
        metadata={"description": "The session's hold (`source: course_plan`) in a held plan; null in a plan only"},
    )
    appointment_id = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Set once the plan is confirmed"}
    )


class CoursePlanSchema(ma.Schema):
    id = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The course plan's id once held; null otherwise"}
    )
    status = ma.fields.String(
        allow_none=True,
        required=True,
        validate=ma.validate.OneOf(COURSE_PLAN_STATUSES),
        metadata={"description": "A held plan's status; null for a plan that holds nothing"},
    )
    expires_at = ClinicInstant(
        allow_none=True, required=True, metadata={"description": "When every hold of a held plan lapses"}
    )
    confirmed_at = ClinicInstant(allow_none=True, required=True)
    created_at = ClinicInstant(allow_none=True, required=True)
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
@blp.alt_response(409, response="CONFLICT")
def plan(data, course_id):
    """Plan a course's remaining sessions, and hold them all with `hold: true`

    Each session in a free slot inside the recommended window after the one before it
    (28-42 calendar days by default), every clinical rule checked as if the sessions before it
    were booked, under the booking policy of the key's channel: the same practitioner as the
    first where possible, then the nearest time of day. A session that cannot be placed is listed
    with the reason and the rule's `earliest_start`. Without `hold` nothing is held or booked;
    with `hold: true` every session is held at once (all or nothing, one expiry) and the answer
    is the course plan, to confirm or release.
    """
    get_or_404(Course, course_id)
    hold, hold_minutes = data.pop("hold"), data.pop("hold_minutes", None)
    lists: dict[str, Any] = {k: tuple(data.pop(k)) for k in ("clinic_ids", "weekdays") if k in data}
    preferences = course_plans.Preferences(**data, **lists)
    if hold:
        record = course_plans.hold_plan(
            db.session(), organization_id(), course_id, preferences, settings(), actor(), hold_minutes
        )
        return _held(record)
    result = course_plans.plan_course(db.session(), organization_id(), course_id, preferences, settings(), actor())
    course = result.course
    return {
        **dict.fromkeys(("id", "status", "expires_at", "confirmed_at", "created_at")),
        "course_id": course.id,
        "patient_id": course.patient_id,
        "treatment_type_id": course.treatment_type_id,
        "complete": all(s.slot is not None for s in result.sessions),
        "sessions": [_session(s) for s in result.sessions],
    }


@blp.route("/course-plans/<plan_id>")
class CoursePlanItem(MethodView):
    @requires("read")
    @blp.response(200, CoursePlanSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, plan_id):
        """Get a held course plan: its sessions, each with its hold, and its status"""
        return _held(course_plans.get_plan(db.session(), organization_id(), plan_id))

    @requires("book")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.doc(description=RELEASED)
    @etags.conditional
    def delete(self, plan_id):
        """Release a course plan: every one of its holds at once"""
        course_plans.release_plan(db.session(), organization_id(), plan_id, etags.expected_version(plan_id))


@blp.route("/course-plans/<plan_id>/confirm", methods=["POST"])
@requires("book")
@blp.response(200, CoursePlanSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(410, response="GONE")
@etags.conditional
@etags.tagged
def confirm(plan_id):
    """Book every session of a held course plan, all or nothing

    Each hold is booked as POST /v1/appointments with its `hold_id` would, every rule checked
    again, in one transaction: a refusal (a 409 `slot_unavailable` naming what the session
    collided with, or a rule's 422) carries `session`, the number of the session it failed
    on, and books nothing. A plan past its expiry is a 410 `hold_expired`.
    """
    record = course_plans.confirm_plan(
        db.session(), organization_id(), plan_id, actor(), etags.expected_version(plan_id)
    )
    return _held(record)


def _held(record: CoursePlan) -> SimpleNamespace:
    """A held plan as the schema shows it (instants in its first session's clinic's zone)."""
    numbered = course_plans.numbered(record)
    clinic = numbered[0][1].clinic if numbered else None
    return SimpleNamespace(
        id=record.id,
        version=record.version,
        status=record.status_at(clock.now()),
        expires_at=record.expires_at,
        confirmed_at=record.confirmed_at,
        created_at=record.created_at,
        clinic=clinic,
        course_id=record.course_id,
        patient_id=record.patient_id,
        treatment_type_id=record.treatment_type_id,
        complete=True,
        sessions=[
            {
                "number": number,
                "status": "planned",
                "slot": hold,
                "reason": None,
                "hold": hold,
                "appointment_id": hold.appointment_id,
            }
            for number, hold in numbered
        ],
    )


def _session(session: course_plans.PlannedSession) -> dict:
    if session.slot is not None:
        slot = {**vars(session.slot), "clinic": session.clinic}
        return {
            "number": session.number,
            "status": "planned",
            "slot": SimpleNamespace(**slot),
            "reason": None,
            "hold": None,
            "appointment_id": None,
        }
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
        "hold": None,
        "appointment_id": None,
    }
