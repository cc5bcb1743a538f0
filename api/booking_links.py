"""Patients' booking links: the personal link the clinic sends a returning patient.

A staff key issues one for a patient (after their consultation, say); the answer's `url` opens the
organization's booking page with the link's token in the URL's fragment, and the page books as that
patient, every clinical rule checked for them. Revoking it (DELETE) ends it at once.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from booking.services import booking_links
from models import BookingLink, Patient

from . import db, etags, idempotency, pages
from .auth import authenticate, organization_id, require_staff, requires
from .base import (
    GONE_BUT_AUDITED,
    AuditListArgs,
    Blueprint,
    Id,
    Schema,
    Secret,
    SecretWithheld,
    audited,
    get_or_404,
    page_schema,
    paginate,
)

blp = Blueprint(
    "booking_links",
    __name__,
    url_prefix="/v1",
    description="Patients' booking links: a returning patient books on the booking page as themselves",
)


class BookingLinkSchema(Schema):
    id = ma.fields.String(dump_only=True)
    patient_id = ma.fields.String(dump_only=True)
    expires_in_days = ma.fields.Integer(
        load_only=True,
        load_default=booking_links.DEFAULT_DAYS,
        strict=True,
        validate=ma.validate.Range(1, booking_links.MAX_DAYS),
        metadata={"description": f"How long the link books; default {booking_links.DEFAULT_DAYS}"},
    )
    treatment_type_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "The treatment the page preselects (the patient may choose another)"},
    )
    course_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "The patient's course a session booked through the link counts on"},
    )
    expires_at = ma.fields.AwareDateTime(dump_only=True)
    revoked_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class NewBookingLinkSchema(BookingLinkSchema):
    secret = Secret("The link's token (bl_...), also in `url`: the booking page books as the patient with it")
    url = Secret(
        "The organization's booking page with the token in its fragment (`#invite=`), to send the patient; "
        "null when no booking page books for the organization"
    )
    secret_withheld = SecretWithheld()


BookingLinkPageSchema = page_schema(BookingLinkSchema)


@blp.route("/patients/<patient_id>/booking-links")
class PatientBookingLinks(MethodView):
    @requires("read")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, BookingLinkPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, patient_id):
        """List a patient's live booking links (and the revoked ones too with include_revoked)"""
        require_staff("read booking links")
        patient = get_or_404(Patient, patient_id)
        return paginate(audited(BookingLink, args).where(BookingLink.patient_id == patient.id), BookingLink, args)

    @requires("book")
    @blp.arguments(BookingLinkSchema)
    @blp.response(201, NewBookingLinkSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def post(self, data, patient_id):
        """Issue a patient their booking link; the answer shows its token and URL once

        The booking page opened with it books as the patient (`patient_token` in
        /v1/booking/holds, /v1/booking/appointments and /v1/availability), so every clinical rule
        is checked for them: a returning patient with a completed consultation may book a session.
        Staff keys only.
        """
        require_staff("issue booking links")
        link = booking_links.issue(
            db.session(),
            organization_id(),
            patient_id,
            expires_in_days=data["expires_in_days"],
            treatment_type_id=data["treatment_type_id"],
            course_id=data["course_id"],
            key_id=authenticate().id,
        )
        link.secret = link.token  # not a column: it exists only in this response
        link.url = pages.invite_url(organization_id(), link.token, request.host_url)
        idempotency.withhold("secret", "url")
        return link


@blp.route("/patients/<patient_id>/booking-links/<link_id>")
class BookingLinkItem(MethodView):
    @requires("read")
    @blp.response(200, BookingLinkSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, patient_id, link_id):
        """Get a patient's booking link (never its token)"""
        require_staff("read booking links")
        return booking_links.link_of(db.session(), organization_id(), patient_id, link_id)

    @requires("book")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=f"The page opened with it is told it ended (410 `booking_link_ended`). {GONE_BUT_AUDITED}")
    @etags.conditional
    def delete(self, patient_id, link_id):
        """Revoke a patient's booking link at once"""
        require_staff("revoke booking links")
        booking_links.revoke(db.session(), organization_id(), patient_id, link_id, etags.expected_version(link_id))
