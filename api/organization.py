"""The organization of the key: its name and the defaults of its booking policy."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from booking.services import tenancy

from . import db, etags
from .auth import organization_id, requires
from .base import Blueprint, Name, Schema
from .config import policy_defaults
from .policies import BookingPolicy

blp = Blueprint(
    "organization",
    __name__,
    url_prefix="/v1/organization",
    description="The organization: the booking policy defaults of its clinics and treatment types",
)


class OrganizationSchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = Name()
    booking_policy = BookingPolicy()
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


@blp.route("")
class OrganizationItem(MethodView):
    @requires("read")
    @blp.response(200, OrganizationSchema)
    @etags.tagged
    def get(self):
        """Get the organization of this API key and its booking policy defaults"""
        return tenancy.get_organization(db.session(), organization_id())

    @requires("admin")
    @blp.arguments(OrganizationSchema(partial=True))
    @blp.response(200, OrganizationSchema)
    @etags.conditional
    @etags.tagged
    def patch(self, data):
        """Rename the organization or change its booking policy defaults (null clears a field)"""
        return tenancy.update_organization(
            db.session(),
            organization_id(),
            data,
            etags.expected_version(organization_id()),
            policy_defaults(current_app.config),
        )
