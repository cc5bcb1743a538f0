"""The one place that turns errors into application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import current_app, g, request
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError

from booking.domain import clock
from booking.domain.errors import DomainError, VersionMismatch

from . import i18n
from .base import MAY_BE_ABSENT

log = logging.getLogger("needlebook.api")

PROBLEM_JSON = "application/problem+json"

# HTTP-level failures with no domain code of their own.
HTTP_CODES = {
    400: "malformed_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    431: "header_fields_too_large",
    500: "internal_error",
}

# Domain codes and the status each answers with.
DOMAIN_STATUS = {
    "validation_error": 422,
    "not_found": 404,
    "in_use": 409,
    "slot_unavailable": 409,
    "course_plan_incomplete": 409,
    "invalid_transition": 409,
    "hold_expired": 410,
    "course_already_active": 409,
    "device_count_too_low": 409,
    "bookings_changing": 409,
    "forbidden": 403,
    "origin_not_allowed": 403,
    "manage_link_ended": 410,
    "booking_link_ended": 410,
}  # every other domain code (the clinical rules) is a 422


# The codes each status answers with: the HTTP layer's own, then the domain's.
CODES_BY_STATUS: dict[int, list[str]] = {status: [code] for status, code in HTTP_CODES.items()}
for _code, _status in {
    **{
        cls.code: DOMAIN_STATUS.get(cls.code, 422) for cls in DomainError.__subclasses__() if cls is not VersionMismatch
    },
    "malformed_json": 400,
    "idempotency_key_reused": 422,
    "idempotency_key_in_flight": 409,
}.items():
    if _code not in CODES_BY_STATUS.setdefault(_status, []):
        CODES_BY_STATUS[_status].append(_code)
# Every code a problem can carry: the base Problem's `code` enum.
ALL_CODES = sorted({code for codes in CODES_BY_STATUS.values() for code in codes})


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem detail with the contract's `code`, and the facts of a domain error as
    extension members (`earliest_start`, the clashing ids)."""

    class Meta:
        unknown = ma.INCLUDE  # documents the open object a problem is: additionalProperties

    type = ma.fields.String(metadata={"description": "URI reference naming the problem type"})
    title = ma.fields.String(metadata={"description": "Short summary of the problem type"})
    status = ma.fields.Integer(strict=True, metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong in this request"})
    code = ma.fields.String(
        validate=ma.validate.OneOf(ALL_CODES), metadata={"description": "Stable machine-readable error code"}
    )
    request_id = ma.fields.String(metadata={"description": "Quote this when asking for support"})
    errors = ma.fields.Dict(
        metadata={"description": "Field errors keyed by field (validation_error only)", MAY_BE_ABSENT: True}
    )


def problem(status: int, code: str, detail: str, headers=None, **extra):
    title = _title(status)
    # On a patient's routes (a booking page's, a manage link's) the words are theirs, in their language.
    title, detail = i18n.problem_text(status, code, extra) or (title, detail)
    body = {
        "type": f"urn:needlebook:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id(),
        **extra,
    }
    response = current_app.json.response(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def request_id() -> str:
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
    return g.request_id


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k == "Allow"})
    errors = data.get("errors") or data.get("messages")
    if status == 422 and errors:
        # webargs nests errors by location ({"json": {...}}); the client wants fields.
        errors = _flatten_locations(errors)
        return problem(422, "validation_error", "The request has invalid fields.", headers, errors=errors)
    code = data.get("code") or HTTP_CODES.get(status, "error")
    detail = data.get("message") or error.description or _title(status)
    if status == 500:
        detail = "An unexpected error occurred; it has been logged with this request id."
    return problem(status, code, detail, headers)


def _flatten_locations(errors: dict) -> dict:
    locations = {"json", "query", "querystring", "headers", "path", "view_args", "form"}
    flat: dict = {}
    for key, value in errors.items():
        if key in locations and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def handle_domain_error(error: DomainError):
    status = DOMAIN_STATUS.get(error.code, 422)
    return problem(status, error.code, error.detail, **_rfc3339(error.facts))


def _rfc3339(value):
    """Instants in facts as RFC 3339 with their offset (Flask would write HTTP dates)."""
    if isinstance(value, dict):
        return {k: _rfc3339(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rfc3339(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return clock.shown_in(value, value.tzinfo).isoformat()
    return value.isoformat() if isinstance(value, datetime) else value


def handle_version_mismatch(error: VersionMismatch):
    # If-Match named a version the object is no longer at (the service compared under its lock).
    return problem(
        412,
        "precondition_failed",
        "The object changed since you read it (If-Match does not name its current ETag); GET it again and retry.",
    )


def handle_stale_data(error: StaleDataError):
    # A writer that did not lock (or sent no If-Match) lost to one that changed the same row
    # first: SQLAlchemy's version guard refused to overwrite that change.
    log.info("stale write [request_id=%s]: %s", request_id(), error)
    return problem(
        412,
        "precondition_failed",
        "The object was changed by another request at the same time; GET it again and retry.",
    )


def handle_unexpected(error: Exception):
    log.exception("unhandled error [request_id=%s] %s %s", request_id(), request.method, request.path)
    return handle_http_exception(InternalServerError())


def init_app(app) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(VersionMismatch, handle_version_mismatch)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(Exception, handle_unexpected)

    @app.after_request
    def _tag(response):
        response.headers["X-Request-ID"] = request_id()
        return response


# The facts each code's problem carries beside the RFC 9457 members (booking/domain/errors.py and
# where each is raised). A fact listed as required is in every problem of that code.
INSTANT = {"type": "string", "format": "date-time"}
IDS = {"type": "array", "items": {"type": "string"}}
_CLAIM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "appointment_id": {"type": "string", "description": "Set when an appointment holds the time"},
        "hold_id": {"type": "string", "description": "Set when a hold holds the time"},
        "starts_at": INSTANT,
        "ends_at": INSTANT,
    },
    "required": ["starts_at"],
}
_COLLISION = {
    **_CLAIM,
    "properties": {
        **_CLAIM["properties"],
        "resource": {"type": "string", "description": "What is busy: practitioner, room, patient or device"},
        "resource_id": {"type": "string"},
    },
    "required": ["resource", "resource_id", "starts_at", "ends_at"],
}
# A course plan's refusal (holding or confirming it) names the session it failed on.
_SESSION = {"type": "integer", "description": "A course plan's session (its number in the course) that failed"}
PROBLEM_FACTS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "validation_error": ({"errors": {"type": "object", "description": "Messages keyed by field"}}, ()),
    "slot_unavailable": (
        {
            "conflicts": {"type": "array", "items": _COLLISION, "description": "What collided"},
            "session": _SESSION,
        },
        ("conflicts",),
    ),
    "course_plan_incomplete": (
        {
            "session": _SESSION,
            "reason": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "detail": {"type": "string", "nullable": True},
                    "earliest_start": {**INSTANT, "nullable": True},
                },
                "required": ["code"],
                "description": "Why it cannot be placed: the rule's code and, where it has one, its earliest_start",
            },
        },
        ("session", "reason"),
    ),
    "in_use": ({"room_ids": IDS, "practitioner_ids": IDS}, ()),
    "invalid_transition": ({"current_status": {"type": "string"}, "appointment_id": {"type": "string"}}, ()),
    "course_already_active": ({"course_id": {"type": "string", "description": "The active course"}}, ("course_id",)),
    "device_count_too_low": (
        {"devices_needed": {"type": "integer"}, "conflicts": {"type": "array", "items": _CLAIM}},
        ("devices_needed", "conflicts"),
    ),
    "hold_expired": ({"hold_id": {"type": "string"}}, ("hold_id",)),
    "origin_not_allowed": (
        {"origin": {"type": "string", "description": "The Origin the request came from"}},
        ("origin",),
    ),
    "manage_link_ended": (
        {"appointment_status": {"type": "string", "description": "The booking's status now"}},
        ("appointment_status",),
    ),
    "booking_link_ended": (
        {"link_status": {"type": "string", "enum": ["expired", "revoked"], "description": "Why it ended"}},
        ("link_status",),
    ),
    "interval_too_short": (
        {
            "earliest_start": {**INSTANT, "description": "When the patient may book again"},
            "conflicting_starts": {"type": "array", "items": INSTANT},
            "conflicts": {
                "type": "array",
                "items": {**_CLAIM, "properties": {**_CLAIM["properties"], "earliest_start": INSTANT}},
                "description": "Booked sessions a recorded past session, or a rescheduled one, is too close to",
            },
        },
        ("earliest_start", "conflicting_starts"),
    ),
    "numbing_lead_too_short": ({"earliest_procedure_start": INSTANT}, ("earliest_procedure_start",)),
    "contraindicated": (
        {
            "contraindications": IDS,
            "until": {
                "type": "string",
                "format": "date",
                "description": "Every active one is temporary: the first date none of them applies to",
            },
            "earliest_start": {**INSTANT, "description": "The first instant of `until` in the clinic's zone"},
        },
        ("contraindications",),
    ),
    "course_complete": (
        {
            "course_id": {"type": "string"},
            "max_sessions": {"type": "integer"},
            "sessions": {"type": "integer"},
            "max_sessions_per_365_days": {"type": "integer"},
        },
        (),
    ),
    "not_qualified": (
        {
            "reason": {
                "type": "string",
                "enum": ["practitioner_clinic", "practitioner_treatment_type", "room_clinic", "room_capability"],
            },
            "required_capability": {"type": "string"},
        },
        ("reason",),
    ),
    "area_not_allowed": ({"area": {"type": "string"}, "allowed_areas": IDS}, ("area", "allowed_areas")),
    # The booking policy's refusals (booking/domain/policy.py): the policy's value, and the nearest instant.
    "too_soon": (
        {
            "min_notice_minutes": {"type": "integer"},
            "earliest_start": {**INSTANT, "description": "First allowed start"},
        },
        ("min_notice_minutes", "earliest_start"),
    ),
    "too_far_ahead": (
        {"horizon_days": {"type": "integer"}, "latest_start": {**INSTANT, "description": "Last allowed start"}},
        ("horizon_days", "latest_start"),
    ),
    "off_grid": (
        {"grid_minutes": {"type": "integer"}, "earliest_start": {**INSTANT, "description": "Next start on the grid"}},
        ("grid_minutes", "earliest_start"),
    ),
    "same_day_not_allowed": (
        {"same_day_booking": {"type": "boolean"}, "earliest_start": {**INSTANT, "description": "First allowed start"}},
        ("same_day_booking", "earliest_start"),
    ),
    "cancellation_window_passed": (
        {
            "cancellation_cutoff_hours": {"type": "integer"},
            "deadline": {**INSTANT, "description": "The last moment a frontend could change it"},
        },
        ("cancellation_cutoff_hours", "deadline"),
    ),
    "daily_limit_reached": (
        {
            "max_sessions_per_practitioner_per_day": {"type": "integer"},
            "date": {"type": "string", "format": "date", "description": "The clinic's local date"},
        },
        ("max_sessions_per_practitioner_per_day", "date"),
    ),
    "not_bookable_online": (
        {
            "bookable_online": {"type": "boolean"},
            "what": {"type": "string", "enum": ["treatment_type", "practitioner"]},
        },
        ("bookable_online", "what"),
    ),
}


def problem_components(spec) -> dict[int, dict]:
    """Register a schema per code with facts, and return each status' problem schema: one of the
    codes' schemas, told apart by `code` (a discriminator typed clients generate a union from)."""
    by_status = {}
    for status, codes in CODES_BY_STATUS.items():
        plain = [code for code in codes if code not in PROBLEM_FACTS]
        branches = {code: _problem_schema(spec, _camel(code), [code]) for code in codes if code in PROBLEM_FACTS}
        if not branches:
            by_status[status] = {"allOf": [{"$ref": "#/components/schemas/Problem"}], **_code_enum(codes)}
            continue
        if plain:
            reference = _problem_schema(spec, _camel(HTTPStatus(status).name.lower()), plain)
            branches.update(dict.fromkeys(plain, reference))
        by_status[status] = {
            "oneOf": list({ref["$ref"]: ref for ref in branches.values()}.values()),
            "discriminator": {"propertyName": "code", "mapping": {code: ref["$ref"] for code, ref in branches.items()}},
        }
    return by_status


def _problem_schema(spec, name: str, codes: list[str]) -> dict:
    facts, required = PROBLEM_FACTS.get(codes[0], ({}, ())) if len(codes) == 1 else ({}, ())
    spec.components.schema(
        name + "Problem",
        component={
            "allOf": [
                {"$ref": "#/components/schemas/Problem"},
                {
                    "type": "object",
                    "properties": {"code": {"type": "string", "enum": codes}, **facts},
                    "required": ["code", *required],
                },
            ]
        },
    )
    return {"$ref": f"#/components/schemas/{name}Problem"}


def _code_enum(codes: list[str]) -> dict:
    return {"properties": {"code": {"type": "string", "enum": codes}}, "type": "object"}


def _camel(code: str) -> str:
    return "".join(part.title() for part in code.split("_"))
