"""The bare floor: a flask-smorest app of its own, outside Needlebook, that reads 10 rows.

    DATABASE_URL=postgresql://... gunicorn --workers 2 bench.bare_app:app

`GET /bench/bare-floor` is what a minimal flask-smorest service pays for one request that
reads from PostgreSQL: Flask routing, flask-smorest's response schema (marshmallow), one
SQLAlchemy connection from the pool per request and one indexed `SELECT ... LIMIT 10` on
the rooms table, read with SQLAlchemy Core. No API key, no rate limiter, no idempotency or
transaction hooks, no pre-ping: none of create_app()'s middleware. bench/floor_app.py's
`GET /bench/floor` is the in-app floor beside it (the same rows through the production app).
bench/run.py serves both at once and alternates between them.
"""

from __future__ import annotations

import os

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask
from flask_smorest import Api, Blueprint


class RowSchema(ma.Schema):
    id = ma.fields.String()
    clinic_id = ma.fields.String()
    name = ma.fields.String()
    capabilities = ma.fields.List(ma.fields.String())
    created_at = ma.fields.AwareDateTime(format="iso")


class RowsSchema(ma.Schema):
    data = ma.fields.List(ma.fields.Nested(RowSchema))


ROOMS = sa.table(
    "rooms",
    sa.column("id", sa.String),
    sa.column("clinic_id", sa.String),
    sa.column("name", sa.String),
    sa.column("capabilities", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
TEN_ROWS = sa.select(ROOMS).order_by(ROOMS.c.id).limit(10)


def create_bare_app(url: str | None = None) -> Flask:
    url = (url or os.environ["DATABASE_URL"]).replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    app = Flask(__name__)
    app.config.update(API_TITLE="bench bare floor", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    api = Api(app)
    blp = Blueprint("bare", __name__, url_prefix="/bench", description="The bare floor")

    @blp.route("/bare-floor")
    @blp.response(200, RowsSchema)
    def bare_floor():
        """Ten rows from PostgreSQL through a schema"""
        with engine.connect() as conn:
            return {"data": conn.execute(TEN_ROWS).mappings().all()}

    api.register_blueprint(blp)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    app.extensions["bare_engine"] = engine
    return app


app = create_bare_app() if "DATABASE_URL" in os.environ else None
