"""The OpenAPI side of the conventions every operation shares: operationId, Idempotency-Key, ETag, If-Match.

An apispec plugin reads what the views are marked with (`auth.requires`' `required_scope`,
`etags.tagged`, `etags.conditional`), so a new view is documented the way it behaves without
anyone repeating the parameters and responses by hand. It names every operation too, from the
view, so generated clients get `listClinics()` rather than `get_v1_clinics()`.
"""

from __future__ import annotations

from http import HTTPStatus

from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter, SchemaResolver
from apispec.ext.marshmallow.common import resolve_schema_instance

from . import idempotency
from .base import MAY_BE_ABSENT
from .i18n import ACCEPT_LANGUAGE, CONTENT_LANGUAGE, patient_facing

ETAG_HEADER = {
    "description": "The object's version as a strong entity tag; send it back in `If-Match` to make "
    "a change conditional on nobody having changed the object since.",
    "schema": {"type": "string"},
}
IF_MATCH = {
    "description": "Change only if the object's current ETag is one of these (or `*`); otherwise a 412 "
    "`precondition_failed` and nothing changes, as it does when the value names no entity tag. "
    "Without the header the change is unconditional.",
    "schema": {"type": "string"},
    "example": '"appt_01jh6x4d1kq7r6m3v2c9p8t5sw.3"',
}

INTEGER = {"type": "integer"}
# The headers answers carry besides the generic HTTP ones (Content-Type, Content-Length, Vary, Allow,
# CORS): documented once here and attached to every response that may carry them, so a typed client
# reads them and tests/conformance.py fails an answer with a header the document does not name.
RESPONSE_HEADERS = {
    "X-Request-ID": {
        "description": "The request's id (the one sent, if printable and at most 64 characters): quote it "
        "when asking for support.",
        "schema": {"type": "string"},
        "required": True,
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored first answer to a request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {**INTEGER, "minimum": 0}},
    "WWW-Authenticate": {
        "description": "`Bearer`: how to authenticate.",
        "schema": {"type": "string"},
        "required": True,
    },
    # Sent on a patient's routes only (a booking page's, a manage link's: api/i18n.py).
    "Content-Language": CONTENT_LANGUAGE,
    "X-RateLimit-Limit": {"description": "Requests allowed per window for this API key.", "schema": INTEGER},
    "X-RateLimit-Remaining": {"description": "Requests left in the current window.", "schema": INTEGER},
    "X-RateLimit-Reset": {"description": "When the window resets, in seconds since the epoch.", "schema": INTEGER},
    "X-RateLimit-Retry-After": {"description": "Seconds until the window resets.", "schema": INTEGER},
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Retry-After")
RATE_LIMITED_PATHS = ("/v1/", "/fhir/")  # api/limits.py


def problem_headers(status: int) -> dict[str, str]:
    """The headers of a shared problem response: any operation may answer it, replayed or rate limited."""
    names = ["X-Request-ID", "Idempotent-Replayed", "Content-Language", *RATE_LIMIT_HEADERS]
    if status == 401:
        names.append("WWW-Authenticate")
    if status in (409, 429, 503):  # a request with the same key still running, too many, not ready
        names.append("Retry-After")
    return dict(zip(names, names, strict=True))


# Where the rule in `operation_id` reads badly, keyed by (endpoint, method). A renamed view must
# keep its operationId (clients call it by that name), so an entry here is how to keep one too.
OPERATION_IDS = {
    ("health.healthz", "get"): "getHealth",
    ("availability.availability", "get"): "searchAvailability",
    ("holds.HoldItem", "delete"): "releaseHold",
    ("appointments.AppointmentItem", "patch"): "rescheduleAppointment",
    ("appointments.cancel", "post"): "cancelAppointment",
    ("appointments.check_in", "post"): "checkInAppointment",
    ("appointments.complete", "post"): "completeAppointment",
    ("appointments.no_show", "post"): "markAppointmentNoShow",
    ("calendars.Feeds", "get"): "listCalendarFeeds",
    ("calendars.Feeds", "post"): "createCalendarFeed",
    ("calendars.FeedItem", "get"): "getCalendarFeed",
    ("calendars.FeedItem", "delete"): "deleteCalendarFeed",
    ("calendars.practitioner_feed", "get"): "getPractitionerCalendar",
    ("calendars.room_feed", "get"): "getRoomCalendar",
    ("calendars.clinic_feed", "get"): "getClinicCalendar",
    ("webhooks.WebhookSecretRotation", "post"): "rotateWebhookSecret",
    ("webhooks.WebhookTest", "post"): "sendWebhookTest",
    ("webhooks.WebhookRedelivery", "post"): "redeliverWebhookDelivery",
}
ITEM_VERBS = {"get": "get", "patch": "update", "put": "replace", "delete": "delete"}
# The FHIR views mirror /v1 ones (a FHIR Practitioner read beside getPractitioner), so theirs say so.
BLUEPRINT_PREFIXES = {"fhir": "fhir"}


def operation_id(endpoint: str, method: str, view) -> str:
    """ClinicItem.get -> getClinic, Clinics.get -> listClinics, Clinics.post -> createClinic,
    a function view read_location -> readLocation; then OPERATION_IDS, then the blueprint's prefix."""
    if (endpoint, method) in OPERATION_IDS:
        return OPERATION_IDS[endpoint, method]
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        words = view.__name__.split("_")
        name = words[0] + "".join(word.title() for word in words[1:])
    elif view_class.__name__.endswith("Item"):
        name = ITEM_VERBS[method] + view_class.__name__.removesuffix("Item")
    elif method == "post":
        name = "create" + _singular(view_class.__name__)
    else:  # a collection read, or (PUT) the whole collection replaced
        name = ("list" if method == "get" else ITEM_VERBS[method]) + view_class.__name__
    prefix = BLUEPRINT_PREFIXES.get(endpoint.partition(".")[0])
    return prefix + name[0].upper() + name[1:] if prefix else name


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name.removesuffix("ies") + "y"
    return name.removesuffix("s")


class ConventionsPlugin(BasePlugin):
    def __init__(self, app):
        self.app = app

    def init_spec(self, spec) -> None:
        spec.components.parameter("IdempotencyKey", "header", {"name": idempotency.HEADER, **idempotency.PARAMETER})
        spec.components.parameter("IfMatch", "header", {"name": "If-Match", **IF_MATCH})
        spec.components.parameter("AcceptLanguage", "header", {"name": "Accept-Language", **ACCEPT_LANGUAGE})
        spec.components.header("ETag", ETAG_HEADER)
        for name, header in RESPONSE_HEADERS.items():
            spec.components.header(name, header)

    def operation_helper(self, path=None, operations=None, rule=None, **kwargs) -> None:
        if rule is None:
            return
        view = self.app.view_functions[rule.endpoint]
        for method, operation in (operations or {}).items():
            function = getattr(getattr(view, "view_class", None), method, view)
            operation["operationId"] = operation_id(rule.endpoint, method, view)
            responses = operation.setdefault("responses", {})
            if method == "post" and getattr(function, "required_scope", None):
                operation.setdefault("parameters", []).append("IdempotencyKey")
                _add_response(responses, 409)
                _add_response(responses, 422)
            if getattr(function, "if_match", False):
                operation.setdefault("parameters", []).append("IfMatch")
                _add_response(responses, 412)
            if "default" not in responses:  # every status an operation can answer, listed (no catch-all)
                _add_response(responses, 500)  # logged with the request id; the body never has a trace
                # api/inputs.py checks every request before its view: a request target or headers over
                # the limits, and text no database stores in a path id or a query parameter (422).
                for status in (414, 422, 431):
                    _add_response(responses, status)
            if path.startswith("/v1/"):
                if method in ("post", "put", "patch"):
                    for status in (400, 413, 415, 422):  # malformed JSON, too large, not JSON, invalid
                        _add_response(responses, status)
                if rule.arguments:
                    _add_response(responses, 404)
            names = ["X-Request-ID"]
            if method == "post" and getattr(function, "required_scope", None):
                names.append("Idempotent-Replayed")
            if path.startswith(RATE_LIMITED_PATHS):
                names += RATE_LIMIT_HEADERS
            if patient_facing(rule.endpoint):
                names.append("Content-Language")
                operation.setdefault("parameters", []).append("AcceptLanguage")
            for code, response in responses.items():
                if not isinstance(response, dict) or "$ref" in response:
                    continue  # a shared response (problem_headers)
                headers = response.setdefault("headers", {})
                headers.update({name: name for name in names})
                if str(code).isdigit() and int(code) >= 400:  # a view's own error answer (FHIR's OperationOutcome)
                    headers.update(problem_headers(int(code)))
                if getattr(function, "etag", False) and str(code).startswith("2"):
                    headers["ETag"] = "ETag"


def _add_response(responses: dict, status: int) -> None:
    """Reference the shared problem+json response, unless the view documents its own."""
    if not any(str(code) == str(status) for code in responses):
        responses[status] = HTTPStatus(status).name


NULL_ONLY = {"type": "object", "nullable": True, "enum": [None]}


def _by_direction(self, field, ret, **kwargs) -> dict:
    """A field that reads more than it writes (api.patients.ContraindicationEntry) documents each
    direction: `openapi_by_direction` = {"input": ..., "output": ...}."""
    by_direction = getattr(field, "openapi_by_direction", None)
    if by_direction is None:
        return {}
    return dict(by_direction["input" if self.directions and self.directions[-1] == "input" else "output"])


class SchemaPlugin(MarshmallowPlugin):
    """apispec's marshmallow plugin, with the two directions of a schema told apart.

    marshmallow's `required` is about loading, so the plain plugin leaves every response field
    optional, and generated clients type every field as possibly missing. Here a schema reached from
    a response is its output form: every field it dumps is `required` unless marked MAY_BE_ABSENT.
    A schema read from a request body keeps marshmallow's `required`; where that differs from the
    output form it is its own component, `<Name>Input`, so a client builds a request without the
    fields only the server sets, and reads a response without a null check on fields always there.
    """

    class Converter(OpenAPIConverter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.directions: list[str] = []
            self.add_attribute_function(_by_direction)

        def resolve_nested_schema(self, schema):
            if self.directions and not isinstance(schema, (str, dict)):
                schema = variant(schema, self.directions[-1])
            return super().resolve_nested_schema(schema)

        def schema2jsonschema(self, schema):
            direction = getattr(schema, "direction", None)
            if direction:
                self.directions.append(direction)
            try:
                jsonschema = super().schema2jsonschema(schema)
            finally:
                if direction:
                    self.directions.pop()
            if direction == "output":
                required = _output_required(schema)
                if required:
                    jsonschema["required"] = required
            return jsonschema

        def field2nullable(self, field, ret) -> dict:
            # A nullable object is the object's reference first, or null. OpenAPI 3.0.3 lets `nullable`
            # admit null only beside a `type`, so the second branch is an object type that admits null
            # alone; apispec's own second branch admits any object, and generated clients made an
            # anonymous model of it ahead of the real one.
            if field.allow_none and ("$ref" in ret or "allOf" in ret):
                branches = [{"$ref": ret.pop("$ref")}] if "$ref" in ret else ret.pop("allOf")
                return {"anyOf": [*branches, NULL_ONLY]}
            return super().field2nullable(field, ret)

    class Resolver(SchemaResolver):
        def resolve_operations(self, operations, **kwargs):
            for operation in operations.values():
                if isinstance(operation, dict) and isinstance(operation.get("requestBody"), dict):
                    _retarget(operation["requestBody"], "input")
            super().resolve_operations(operations, **kwargs)

        def resolve_response(self, response):
            if isinstance(response, dict):
                _retarget(response, "output")
            super().resolve_response(response)


def _retarget(holder: dict, direction: str) -> None:
    for media in (holder.get("content") or {}).values():
        schema = media.get("schema")
        if schema is not None and not isinstance(schema, (str, dict)):
            media["schema"] = variant(schema, direction)


_VARIANTS: dict[tuple[type, str], type] = {}


def variant(schema, direction: str):
    """The schema as read in `direction`: the same fields, a subclass whose name tells the direction."""
    instance = resolve_schema_instance(schema)
    cls = type(instance)
    if getattr(cls, "direction", None) == direction:
        return instance
    cls = getattr(cls, "base", cls)
    if direction == "input" and instance.partial is not True and _same_both_ways(cls):
        direction = "output"  # one component serves both: nothing differs but the direction
    key = (cls, direction)
    if key not in _VARIANTS:
        _VARIANTS[key] = type(cls.__name__, (cls,), {"direction": direction, "base": cls, "__module__": cls.__module__})
    modifiers = {name: getattr(instance, name) for name in ("many", "partial", "load_only", "dump_only")}
    return _VARIANTS[key](only=instance.only, exclude=instance.exclude, **modifiers)


def _output_required(schema) -> list[str]:
    return sorted(
        field.data_key or name
        for name, field in schema.fields.items()
        if not field.load_only and not field.metadata.get(MAY_BE_ABSENT)
    )


def _same_both_ways(cls: type) -> bool:
    """No read-only or write-only field, and every field required on input and present on output."""
    fields = cls().fields.values()
    return all(
        field.required and not field.dump_only and not field.load_only and not field.metadata.get(MAY_BE_ABSENT)
        for field in fields
    )
