"""Appointments: book from a hold or a slot, reschedule, and the lifecycle."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.services import appointments
from models import APPOINTMENT_STATUSES, CHANNELS, Appointment

from . import db, etags, idempotency
from .auth import actor, organization_id, requires
from .base import (
    MAY_BE_ABSENT,
    Blueprint,
    ClinicInstant,
    Id,
    Instant,
    ListArgs,
    Schema,
    SecretWithheld,
    page_schema,
    paginate,
    scoped,
)
from .slots import BookingInputSchema, SlotOutputSchema, override_reason_field, slot_request

blp = Blueprint(
    "appointments",
    __name__,
    url_prefix="/v1/appointments",
    description="Appointments: booking, rescheduling and the visit's lifecycle",
)


class AppointmentCreateSchema(BookingInputSchema):
    """Either `hold_id` (optionally with `course_id`, `area`), or a slot with `patient_id`."""

    hold_id = Id(metadata={"description": "Book this live hold"})

    class Meta:
        unknown = ma.RAISE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at", "patient_id"):
            self.fields[name].required = False

    @ma.validates_schema
    def _hold_or_slot(self, data, **kwargs):
        slot_fields = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at", "patient_id")
        if "hold_id" in data:
            extra = [f for f in (*slot_fields, "procedure_starts_at", "ends_at") if f in data]
            if extra:
                raise ma.ValidationError({f: ["Not allowed with hold_id."] for f in extra})
        else:
            missing = {f: ["Missing data for required field."] for f in slot_fields if f not in data}
            if missing:
                raise ma.ValidationError(missing)


class KeyActedSchema(Schema):
    """The API key that did something to an appointment, as it was when it did."""

    key_id = ma.fields.String(metadata={"description": "The key's id (still named once it is revoked)"})
    channel = ma.fields.String(metadata={"enum": list(CHANNELS)})


def _acted(what: str) -> ma.fields.Nested:
    return ma.fields.Nested(
        KeyActedSchema,
        allow_none=True,
        metadata={
            "description": f"The API key that {what} it; null when no key did (the scheduler) "
            "or it was done before this was recorded"
        },
    )


class AppointmentSchema(SlotOutputSchema):
    id = ma.fields.String()
    patient_id = ma.fields.String()
    course_id = ma.fields.String(allow_none=True)
    area = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"enum": list(APPOINTMENT_STATUSES)})
    rescheduled_from = ma.fields.String(allow_none=True, metadata={"description": "The appointment this one replaced"})
    rescheduled_to = ma.fields.String(
        allow_none=True, metadata={"description": "The appointment that replaced this one (a reschedule)"}
    )
    hold_id = ma.fields.String(allow_none=True)
    course_plan_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The course plan it was booked with (POST /v1/course-plans/{id}/confirm)"},
    )
    cancel_reason = ma.fields.String(allow_none=True)
    cancel_note = ma.fields.String(allow_none=True)
    checked_in_at = ClinicInstant(allow_none=True)
    completed_at = ClinicInstant(allow_none=True)
    cancelled_at = ClinicInstant(allow_none=True)
    override_key_id = ma.fields.String(
        allow_none=True, metadata={"description": "The staff key that overrode the policy"}
    )
    override_reason = ma.fields.String(allow_none=True, metadata={"description": "Why it overrode the policy"})
    created_by = _acted("created (booked)")
    rescheduled_by = _acted("rescheduled")
    reschedule_reason = ma.fields.String(
        allow_none=True, metadata={"description": "The reason given when it was rescheduled, if any"}
    )
    cancelled_by = _acted("cancelled (or rescheduled, which cancels it)")
    manage_token = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            MAY_BE_ABSENT: True,
            "description": "The patient's manage link token (GET /v1/manage/{token}): only in the answer that "
            "created the appointment (a booking, a reschedule) and its event; stored as a digest only, so a "
            "replay (Idempotency-Key) answers null",
        },
    )
    secret_withheld = SecretWithheld()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class AppointmentListArgs(ListArgs):
    clinic_id = Id()
    practitioner_id = Id()
    patient_id = Id()
    status = ma.fields.String(validate=ma.validate.OneOf(APPOINTMENT_STATUSES))
    start = Instant(metadata={"description": "Only appointments ending after this"})
    end = Instant(metadata={"description": "Only appointments starting before this"})


class RescheduleSchema(Schema):
    clinic_id = Id()
    practitioner_id = Id()
    room_id = Id()
    starts_at = Instant()
    procedure_starts_at = Instant()
    override_reason = override_reason_field()
    reason = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(min=1, max=appointments.RESCHEDULE_REASON_MAX),
        metadata={"description": "Why it is moved: recorded on the old appointment as `reschedule_reason`"},
    )

    @ma.validates_schema
    def _something(self, data, **kwargs):
        if not set(data) - {"override_reason", "reason"}:
            raise ma.ValidationError("Give at least one field to change.", "_schema")


class CancelSchema(Schema):
    reason = ma.fields.String(
        required=True, validate=ma.validate.OneOf([r for r in appointments.CANCEL_REASONS if r != "rescheduled"])
    )
    note = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=1000))


AppointmentPageSchema = page_schema(AppointmentSchema)


@blp.route("")
class Appointments(MethodView):
    @requires("read")
    @blp.arguments(AppointmentListArgs, location="query")
    @blp.response(200, AppointmentPageSchema)
    def get(self, args):
        """List appointments, filtered by clinic, practitioner, patient, status and time"""
        query = scoped(Appointment)
        for field in ("clinic_id", "practitioner_id", "patient_id", "status"):
            if args.get(field):
                query = query.where(getattr(Appointment, field) == args[field])
        if args.get("start"):
            query = query.where(Appointment.ends_at > args["start"])
        if args.get("end"):
            query = query.where(Appointment.starts_at < args["end"])
        return paginate(query, Appointment, args)

    @requires("book")
    @blp.arguments(AppointmentCreateSchema)
    @blp.response(201, AppointmentSchema)
    @blp.alt_response(404, response="NOT_FOUND")  # a hold_id that is not one of the organization's
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(410, response="GONE")
    @etags.tagged
    def post(self, data):
        """Book an appointment from a hold or directly from a slot

        Every clinical rule is checked and the resources are claimed atomically:
        a slot that is no longer free is a 409 `slot_unavailable`.
        """
        who = actor(data.get("override_reason"))
        idempotency.withhold("manage_token")
        if "hold_id" in data:
            return appointments.book_from_hold(
                db.session(),
                organization_id(),
                data["hold_id"],
                course_id=data.get("course_id"),
                area=data.get("area"),
                actor=who,
            )
        return appointments.book(db.session(), organization_id(), slot_request(data), who)


@blp.route("/<appointment_id>")
class AppointmentItem(MethodView):
    @requires("read")
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, appointment_id):
        """Get an appointment"""
        return appointments.get_appointment(db.session(), organization_id(), appointment_id)

    @requires("book")
    @blp.arguments(RescheduleSchema)
    @blp.response(200, AppointmentSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @etags.conditional
    @etags.tagged
    def patch(self, changes, appointment_id):
        """Reschedule: a new appointment replaces this one, which is cancelled

        The answer is the new appointment, with its own ETag; its `rescheduled_from` names the
        old one, whose `rescheduled_to` names the new one. If-Match is checked against the old one.
        An optional `reason` (1-500 characters) is recorded on the old one as `reschedule_reason`,
        with the key that moved it as `rescheduled_by`; the new one's `created_by` is that key.
        """
        who = actor(changes.pop("override_reason", None))
        reason = changes.pop("reason", None)
        idempotency.withhold("manage_token")
        return appointments.reschedule(
            db.session(),
            organization_id(),
            appointment_id,
            changes,
            etags.expected_version(appointment_id),
            who,
            reason=reason,
        )


@blp.route("/<appointment_id>/cancel", methods=["POST"])
@requires("book")
@blp.arguments(CancelSchema)
@blp.response(200, AppointmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@etags.conditional
@etags.tagged
def cancel(data, appointment_id):
    """Cancel an appointment with a reason; its resources are freed"""
    return appointments.cancel(
        db.session(),
        organization_id(),
        appointment_id,
        **data,
        expected_version=etags.expected_version(appointment_id),
        actor=actor(),
    )


@blp.route("/<appointment_id>/check-in", methods=["POST"])
@requires("book")
@blp.response(200, AppointmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@etags.conditional
@etags.tagged
def check_in(appointment_id):
    """Check the patient in (from two hours before the start)"""
    return appointments.check_in(
        db.session(), organization_id(), appointment_id, etags.expected_version(appointment_id)
    )


@blp.route("/<appointment_id>/complete", methods=["POST"])
@requires("book")
@blp.response(200, AppointmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@etags.conditional
@etags.tagged
def complete(appointment_id):
    """Complete the visit; a session counts on its course"""
    return appointments.complete(
        db.session(), organization_id(), appointment_id, etags.expected_version(appointment_id)
    )


@blp.route("/<appointment_id>/no-show", methods=["POST"])
@requires("book")
@blp.response(200, AppointmentSchema)
@blp.alt_response(404, response="NOT_FOUND")
@blp.alt_response(409, response="CONFLICT")
@etags.conditional
@etags.tagged
def no_show(appointment_id):
    """Mark that the patient did not come (once the start has passed)"""
    return appointments.no_show(db.session(), organization_id(), appointment_id, etags.expected_version(appointment_id))
