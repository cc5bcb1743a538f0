"""CORS for browser frontends (flask-cors), on every surface a browser may call.

Off unless CORS_ORIGINS names origins. Then the API, the FHIR views, the health check and
the OpenAPI document answer those origins, and expose the headers a frontend reads.
"""

from __future__ import annotations

from flask import Flask, request
from flask_cors import CORS

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
