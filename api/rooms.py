"""Rooms of a clinic and their capabilities."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.services import clinics
from models import Clinic, Room

from . import db, etags
from .auth import organization_id, requires
from .base import (
    GONE,
    Blueprint,
    FullMatch,
    ListArgs,
    Name,
    Schema,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)

blp = Blueprint("rooms", __name__, url_prefix="/v1", description="Rooms and their capabilities")

CAPABILITY = FullMatch(r"^[a-z][a-z0-9_]{0,39}$", error="Must be a lowercase word such as 'needling'.")
Capability = ma.fields.String(validate=CAPABILITY)


class RoomSchema(Schema):
    id = ma.fields.String(dump_only=True)
    clinic_id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    capabilities = ma.fields.List(Capability, load_default=list, metadata={"example": ["needling"]})
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)

    @ma.validates("capabilities")
    def _unique(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ma.ValidationError("Capabilities must not repeat.")


RoomPageSchema = page_schema(RoomSchema)


@blp.route("/clinics/<clinic_id>/rooms")
class ClinicRooms(MethodView):
    @requires("read")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, RoomPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, clinic_id):
        """List a clinic's rooms"""
        clinic = get_or_404(Clinic, clinic_id)
        return paginate(scoped(Room).where(Room.clinic_id == clinic.id), Room, args)

    @requires("admin")
    @blp.arguments(RoomSchema)
    @blp.response(201, RoomSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def post(self, data, clinic_id):
        """Add a room to a clinic"""
        return clinics.add_room(db.session(), organization_id(), clinic_id, data)


@blp.route("/rooms/<room_id>")
class RoomItem(MethodView):
    @requires("read")
    @blp.response(200, RoomSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, room_id):
        """Get a room"""
        return get_or_404(Room, room_id)

    @requires("admin")
    @blp.arguments(RoomSchema(partial=True))
    @blp.response(200, RoomSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, room_id):
        """Rename a room or change its capabilities"""
        return clinics.change_room(db.session(), organization_id(), room_id, data, etags.expected_version(room_id))

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, room_id):
        """Archive a room"""
        clinics.archive_room(db.session(), organization_id(), room_id, etags.expected_version(room_id))
