"""Rate limits per API key (flask-limiter) and CORS for browser frontends (flask-cors).

Limits are counted per key (a digest of the bearer token; the client address when
there is none) on /v1 and /fhir only. Storage is in memory by default, which counts per
process (with gunicorn's 2 workers a key gets up to twice the limit), and Redis when
REDIS_URL is set, which counts once for every worker and node.
"""

from __future__ import annotations

import hashlib

from flask import Flask, g, request
from flask_cors import CORS
from flask_limiter import HeaderNames, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded

from . import errors

# What a browser frontend may send and read besides the simple headers.
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"]
CORS_EXPOSE_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]


def client_key() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    return "addr:" + (request.remote_addr or "unknown")


def _not_limited() -> bool:
    return request.method == "OPTIONS" or not request.path.startswith(("/v1/", "/fhir/"))


def _remember(limit: RequestLimit) -> None:
    g.rate_limit_reset_at = limit.reset_at


def _too_many(error: RateLimitExceeded):
    import time

    wait = max(1, int(g.get("rate_limit_reset_at", time.time() + 1) - time.time()))
    return errors.problem(
        429,
        "rate_limited",
        f"Too many requests for this API key ({error.description}); retry in {wait} s.",
        headers={"Retry-After": str(wait)},
    )


def init_app(app: Flask) -> None:
    limiter = Limiter(
        client_key,
        app=app,
        default_limits=[app.config["RATE_LIMIT"]],
        default_limits_exempt_when=_not_limited,
        storage_uri=app.config["REDIS_URL"] or "memory://",
        strategy="moving-window",
        headers_enabled=True,
        # flask-limiter would put Retry-After on every response; only a 429 carries it here.
        header_name_mapping={HeaderNames.RETRY_AFTER: "X-RateLimit-Retry-After"},
        on_breach=_remember,
        enabled=app.config["RATE_LIMIT_ENABLED"],
    )
    app.extensions["needlebook_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many)
    origins = app.config["CORS_ORIGINS"]
    if origins:
        CORS(
            app,
            resources={r"/v1/*": {}, r"/openapi.json": {}},
            origins=origins,
            allow_headers=CORS_ALLOW_HEADERS,
            expose_headers=CORS_EXPOSE_HEADERS,
            max_age=600,
        )
