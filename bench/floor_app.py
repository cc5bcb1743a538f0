"""The app under benchmark: the production app, plus the floor endpoints on this app only.

    gunicorn --workers 2 bench.floor_app:app

`GET /bench/floor` is the floor of the benchmark: a trivial flask-smorest endpoint
that reads 10 rows from the database (an indexed SELECT ... LIMIT 10) and returns
them through a marshmallow schema, with no API key. `GET /bench/floor-static`
returns 10 rows built in memory through the same schema (no database at all).
Neither exists in `wsgi:app` nor in the committed OpenAPI document: the blueprint
is registered here, on top of `create_app()`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
import sqlalchemy as sa

from api import create_app, db
from api.base import Blueprint
from models import Room

blp = Blueprint("bench_floor", __name__, url_prefix="/bench", description="Benchmark floor (bench app only)")


class FloorRowSchema(ma.Schema):
    id = ma.fields.String()
    clinic_id = ma.fields.String()
    name = ma.fields.String()
    capabilities = ma.fields.List(ma.fields.String())
    created_at = ma.fields.AwareDateTime(format="iso")


class FloorSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(FloorRowSchema))


_STATIC = [
    {
        "id": f"room_{n:026d}",
        "clinic_id": "cln_00000000000000000000000000",
        "name": f"Treatment {n}",
        "capabilities": ["needling"],
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    for n in range(10)
]


@blp.route("/floor")
@blp.response(200, FloorSchema)
def floor():
    """Ten rows from the database through a schema"""
    return {"data": db.session().scalars(sa.select(Room).order_by(Room.id).limit(10)).all()}


@blp.route("/floor-static")
@blp.response(200, FloorSchema)
def floor_static():
    """Ten rows from memory through a schema"""
    return {"data": _STATIC}


def build_app():
    app = create_app()
    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(blp)
    return app


app = build_app()
