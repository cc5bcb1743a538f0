"""Liveness that proves the database answers."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask_smorest import abort

from . import db
from .base import Blueprint

blp = Blueprint("health", __name__, description="Health check (no key needed)")


class HealthSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})
    database = ma.fields.String(metadata={"example": "ok"})


@blp.route("/healthz")
@blp.doc(security=[])  # needs no key; said so, since "no security listed" means "not documented"
@blp.response(200, HealthSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
@blp.alt_response(414, response="REQUEST_URI_TOO_LONG")  # the request limits (api/inputs.py) hold here too
@blp.alt_response(431, response="REQUEST_HEADER_FIELDS_TOO_LARGE")
def healthz():
    """Check that the service and its database answer"""
    try:
        db.session().execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        abort(503, message="The database does not answer.")
    return {"status": "ok", "database": "ok"}
