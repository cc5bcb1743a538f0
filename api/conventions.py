"""The OpenAPI side of the conventions every operation shares: operationId, Idempotency-Key, ETag, If-Match.

An apispec plugin reads what the views are marked with (`auth.requires`' `required_scope`,
`etags.tagged`, `etags.conditional`), so a new view is documented the way it behaves without
anyone repeating the parameters and responses by hand. It names every operation too, from the
view, so generated clients get `listClinics()` rather than `get_v1_clinics()`.
"""

from __future__ import annotations

from http import HTTPStatus

from apispec import BasePlugin

from . import idempotency

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
        spec.components.header("ETag", ETAG_HEADER)

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
            if path.startswith("/v1/"):  # every status a /v1 operation can answer, listed (no catch-all)
                _add_response(responses, 500)  # logged with the request id; the body never has a trace
                for status in (414, 431):  # a request target or headers over the limits (api/inputs.py)
                    _add_response(responses, status)
                if method in ("post", "put", "patch"):
                    for status in (400, 413, 415, 422):  # malformed JSON, too large, not JSON, invalid
                        _add_response(responses, status)
                if rule.arguments:
                    _add_response(responses, 404)
            if getattr(function, "etag", False):
                for code, response in responses.items():
                    if str(code).startswith("2") and isinstance(response, dict):
                        response.setdefault("headers", {})["ETag"] = "ETag"


def _add_response(responses: dict, status: int) -> None:
    """Reference the shared problem+json response, unless the view documents its own."""
    if not any(str(code) == str(status) for code in responses):
        responses[status] = HTTPStatus(status).name
