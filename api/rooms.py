"""Rooms of a clinic and their capabilities."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.domain import clock
from models import Clinic, Room

from . import db, etags
from .auth import organization_id, requires
from .base import (
    Blueprint,
    FullMatch,
    ListArgs,
    Name,
    Schema,
    get_for_update,
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
        clinic = get_or_404(Clinic, clinic_id)
        room = Room(organization_id=organization_id(), clinic_id=clinic.id, **data)
        db.session().add(room)
        db.session().flush()
        return room


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
        room = get_for_update(Room, room_id)
        for field, value in data.items():
            setattr(room, field, value)
        db.session().flush()
        return room

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    def delete(self, room_id):
        """Archive a room"""
        get_for_update(Room, room_id).archived_at = clock.now()
        db.session().flush()
