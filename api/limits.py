"""Rate limits per API key (flask-limiter).

Limits are counted per key (a digest of the bearer token; the client address when
there is none) on /v1 and /fhir only. A publishable key (`pk_...`) is shared by every visitor of
a booking page, so it has a limit of its own (PUBLISHABLE_RATE_LIMIT) and a second one per key and
client address (PUBLISHABLE_ADDRESS_RATE_LIMIT): one visitor cannot spend the page's whole limit.
Storage is in memory by default, which counts per process (with gunicorn's 2 workers a key
gets up to twice the limit), and Redis when REDIS_URL is set, which counts once for every worker and node.

The memory storage is limits' MemoryStorage with its sweep of expired entries done inline, at most
once a second, instead of on a Timer thread it starts 10 ms after a hit whenever the last one has
ended (with requests further apart than that, a thread per request, about 0.3 ms). The sweep only
frees memory: every count and moving window checks its entries' times itself.
"""

from __future__ import annotations

import hashlib
import time

from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, HeaderNames, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from limits.storage import MemoryStorage

from booking.services.tenancy import PUBLISHABLE_PREFIX

from . import errors
from .auth import bearer_token


class InlineSweepMemoryStorage(MemoryStorage):
    """`memory://` without a thread per hit: the sweep runs in the hit that finds it due."""

    STORAGE_SCHEME = ["needlebook-memory"]  # noqa: RUF012  # limits names the attribute, a list
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    # MemoryStorage calls its private __schedule_expiry before each hit; this is it, name-mangled.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def client_key() -> str:
    token = bearer_token(request.headers.get("Authorization", ""))
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "addr:" + (request.remote_addr or "unknown")


def _publishable() -> bool:
    token = bearer_token(request.headers.get("Authorization", ""))
    return bool(token and token.startswith(PUBLISHABLE_PREFIX))


def per_key_limit() -> str:
    config = current_app.config
    return config["PUBLISHABLE_RATE_LIMIT"] if _publishable() else config["RATE_LIMIT"]


def _address_limit() -> str:
    return current_app.config["PUBLISHABLE_ADDRESS_RATE_LIMIT"]


def key_and_address() -> str:
    return f"{client_key()}:addr:{request.remote_addr or 'unknown'}"


def _not_publishable() -> bool:
    return _not_limited() or not _publishable()


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
        default_limits=[per_key_limit],
        default_limits_exempt_when=_not_limited,
        # Every request made with a publishable key, per key and client address, over all routes
        # (a pk key's refused routes count too), beside the per-key default.
        application_limits=[
            ApplicationLimit(
                limit_provider=_address_limit,
                key_function=key_and_address,
                exempt_when=_not_publishable,
                scope="publishable-address",
            )
        ],
        storage_uri=app.config["REDIS_URL"] or "needlebook-memory://",
        strategy="moving-window",
        headers_enabled=True,
        # flask-limiter would put Retry-After on every response; only a 429 carries it here.
        header_name_mapping={HeaderNames.RETRY_AFTER: "X-RateLimit-Retry-After"},
        on_breach=_remember,
        enabled=app.config["RATE_LIMIT_ENABLED"],
    )
    app.extensions["needlebook_limiter"] = limiter

    app.register_error_handler(RateLimitExceeded, _too_many)
