"""The HTTP layer: the app factory, one flask-smorest blueprint per resource."""

from __future__ import annotations

import logging
from typing import Any

import flask_smorest
import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_smorest.utils import prepare_response

from models import make_engine
from models.db import PROJECT_ROOT

from . import auth, config, conventions, cors, db, errors, i18n, inputs, limits, transactions

API_TITLE = "Needlebook clinic scheduling API"
API_VERSION = "1.0.0"
API_DESCRIPTION = """\
Scheduling for clinic chains that perform microneedling: clinics in their own time
zones, rooms, practitioners working across clinics, treatment types with their
numbing lead times and intervals, patients with their contraindications, and
treatment courses.

Authenticate with `Authorization: Bearer <api key>`: a secret key (`nbk_...`) on a server,
or a publishable key (`pk_...`) in a booking page, which may only do what a booking page does
(the `/v1/booking/...` routes, availability and the patients' `/v1/manage/{token}` links).
Errors are `application/problem+json` with a stable `code`.
"""


class Api(flask_smorest.Api):
    """flask-smorest's Api, answering and documenting errors as problem+json."""

    ERROR_SCHEMA = errors.ProblemSchema
    # No catch-all "default" response: each operation lists the statuses it can answer
    # (api/conventions.py), so a status it does not list is a bug schemathesis finds.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)

    def _register_responses(self):
        import http

        self.spec.components.schema("Problem", schema=conventions.variant(self.ERROR_SCHEMA, "output"))
        problems = errors.problem_components(self.spec)
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": inputs.DESCRIPTIONS.get(status, status.phrase)}
            if status >= 400:
                response["schema"] = problems.get(status, self.ERROR_SCHEMA)
                response["headers"] = conventions.problem_headers(status)
            prepare_response(response, self.spec, errors.PROBLEM_JSON if status >= 400 else "application/json")
            # 401, 403 and 429 are referenced by hand from auth.requires, so they must exist.
            self.spec.components.response(status.name, response, lazy=status not in (401, 403, 429))
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, errors.PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_pagination_header(self):
        """Nothing: collections page by cursor in the body (api/base.py), not by flask-smorest's header,
        whose PaginationMetadata schema would otherwise sit unused in the document."""


class FastJSONProvider(DefaultJSONProvider):
    """Flask's provider, with responses encoded by orjson (several times faster on a large availability
    answer). The same JSON: keys in order, dates, datetimes and dataclasses through Flask's own
    `default` as before; whatever orjson refuses (keys that are not strings, integers past 64 bits)
    and pretty-printed answers go through Flask's encoder. Text is UTF-8 rather than \\u-escaped."""

    _options = (
        orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_APPEND_NEWLINE
    )

    def response(self, *args, **kwargs):
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(obj, default=self.default, option=self._options)
        except TypeError:  # orjson.JSONEncodeError is one
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)  # type: ignore[arg-type]  # bytes are fine


def create_app(config_overrides: dict | None = None, *, sessionmaker=None) -> Flask:
    """Build the app. `sessionmaker` lets tests bind every request to one rolled-back connection."""
    app = Flask(__name__, instance_path=str(PROJECT_ROOT / "instance"))
    app.config.update(config.from_environment())
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            # Relative, so the document works on whatever host serves it (and in /docs' "Try it out").
            "servers": [{"url": "/", "description": "This host: paths start at /v1, /fhir/R4 or /healthz"}],
            "components": {
                "securitySchemes": {"bearerAuth": auth.SECURITY_SCHEME, "feedToken": calendars_feed_scheme()}
            },
        },
        JSON_SORT_KEYS=False,
    )
    app.config.update(config_overrides or {})
    app.json = FastJSONProvider(app)
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own: sort_keys is its documented switch
    app.json.sort_keys = False
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s")

    engine = None if sessionmaker else make_engine(app.config["DATABASE_URL"])
    db.init_app(app, engine, sessionmaker)
    errors.init_app(app)
    limits.init_app(app)
    cors.init_app(app)
    inputs.init_app(app)  # before the Idempotency-Key claim, which stores the path
    transactions.init_app(app)
    i18n.init_app(app)  # after: its Content-Language is set before the Idempotency-Key records the answer

    api = Api(
        app,
        spec_kwargs={
            "marshmallow_plugin": conventions.SchemaPlugin(schema_name_resolver=_schema_name),
            "extra_plugins": [conventions.ConventionsPlugin(app)],
        },
    )
    _register_blueprints(api)
    _register_docs_assets(app)
    from . import pages

    pages.init_app(app)  # the booking, manage and day-sheet pages: HTML, not in the OpenAPI document

    from . import cli

    cli.init_app(app)
    return app


def calendars_feed_scheme() -> dict:
    from .calendars import FEED_TOKEN_SCHEME

    return FEED_TOKEN_SCHEME


def _schema_name(schema) -> str:
    """ClinicSchema -> Clinic; a partial (PATCH) instance -> ClinicUpdate; a request body whose
    fields differ from the response's (api/conventions.py) -> ClinicInput."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    if getattr(schema, "partial", False) is True:
        return name + "Update"
    if getattr(cls, "direction", None) == "input" and not name.endswith(("Input", "Create", "Update")):
        return name + "Input"
    return name


def _register_blueprints(api: Api) -> None:
    from . import (
        api_keys,
        appointments,
        availability,
        booking_links,
        booking_page,
        calendars,
        clinics,
        course_plans,
        follow_ups,
        health,
        holds,
        manage,
        organization,
        patients,
        practitioners,
        rooms,
        treatment_types,
        waitlist,
        webhooks,
    )

    for module in (
        health,
        clinics,
        rooms,
        practitioners,
        treatment_types,
        patients,
        booking_links,
        availability,
        holds,
        appointments,
        follow_ups,
        course_plans,
        waitlist,
        webhooks,
        calendars,
        api_keys,
        organization,
        booking_page,
        manage,
    ):
        api.register_blueprint(module.blp)
    from . import fhir  # /fhir/R4: read views in FHIR's own JSON and errors

    api.register_blueprint(fhir.blp)


def _register_docs_assets(app: Flask) -> None:
    """Swagger UI's files come from the swagger-ui-bundle package, so /docs works offline."""
    import swagger_ui_bundle
    from flask import send_from_directory

    @app.get("/docs/assets/<path:filename>")
    def swagger_ui_assets(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
