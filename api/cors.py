"""CORS for browser frontends (flask-cors), on every surface a browser may call.

Server-wide: off unless CORS_ORIGINS names origins. Then the API, the FHIR views, the health check
and the OpenAPI document answer those origins, and expose the headers a frontend reads.

Per publishable key: a request made with a `pk_...` key is answered for the origins that key lists,
and only those (the server-wide list does not apply to it), with flask-cors' own header logic over
the key's list. A preflight carries no key (browsers send no Authorization on it): it is granted,
on a route a publishable key may call, to an origin some live publishable key lists; the request
itself is then refused (403 `origin_not_allowed`) when its key does not list that origin, and its
answer carries no CORS grant, so the page cannot read it.
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_cors import CORS
from flask_cors.core import ACL_ORIGIN, get_cors_headers, get_cors_options

# What a browser frontend may send and read besides the simple headers.
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"]
EXPOSE_HEADERS = [
    "ETag",
    "Idempotent-Replayed",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
PATHS = ("/v1/", "/fhir/", "/healthz", "/openapi.json")


def init_app(app: Flask) -> None:
    # Registered before flask-cors: after_request hooks run last-registered first, so this one
    # sees (and for a publishable key's request, replaces) what flask-cors answered.
    app.before_request(_remember_preflight_grant)
    app.after_request(_publishable_cors)
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    CORS(
        app,
        resources={r"/v1/*": {}, r"/fhir/*": {}, r"/healthz": {}, r"/openapi.json": {}},
        origins=origins,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        max_age=600,
    )
    app.after_request(_vary_on_origin)


def _vary_on_origin(response):
    """The answer depends on Origin (an allowed one gets the CORS headers, another does not), so a
    shared cache must key on it. flask-cors adds Vary only in some of its cases (not with one
    configured origin, not when the request has no Origin), so it is added here for every answer."""
    if request.path.startswith(PATHS):
        response.vary.add("Origin")
    return response


CORS_HEADERS = (
    ACL_ORIGIN,
    "Access-Control-Expose-Headers",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Credentials",
)


def _options(origins: list[str]):
    return get_cors_options(
        current_app,
        {
            "origins": origins,
            "allow_headers": ALLOW_HEADERS,
            "expose_headers": EXPOSE_HEADERS,
            "max_age": 600,
            "vary_header": False,  # added below for every answer, as _vary_on_origin does
        },
    )


def _publishable_route(method: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    handler = getattr(getattr(view, "view_class", None), method.lower(), view)
    return bool(getattr(handler, "publishable", False))


def _remember_preflight_grant():
    origin = request.headers.get("Origin")
    asked = request.headers.get("Access-Control-Request-Method", "")
    if request.method != "OPTIONS" or not origin or not asked or not request.path.startswith("/v1/"):
        return
    if _publishable_route(asked):
        from booking.services.tenancy import listed_by_a_publishable_key

        from . import db

        if listed_by_a_publishable_key(db.session(), origin):
            g.publishable_preflight_origin = origin


def _uses_publishable_key() -> bool:
    from booking.services.tenancy import PUBLISHABLE_PREFIX

    from .auth import bearer_token

    token = bearer_token(request.headers.get("Authorization", ""))
    return bool(token and token.startswith(PUBLISHABLE_PREFIX))


def _publishable_cors(response):
    granted = g.pop("publishable_preflight_origin", None)
    if granted is not None:
        _replace(response, [granted])
    elif request.path.startswith("/v1/") and _uses_publishable_key():
        key = g.get("api_key")
        origin = request.headers.get("Origin", "")
        allowed = key is not None and key.publishable and origin.lower() in (key.origins or ())
        _replace(response, [origin] if allowed else [])
    return response


def _replace(response, origins: list[str]) -> None:
    for name in CORS_HEADERS:
        response.headers.pop(name, None)
    if origins:
        for name, value in get_cors_headers(_options(origins), request.headers, request.method).items():
            response.headers.add(name, value)
    response.vary.add("Origin")
