"""Bearer API keys and per-endpoint scopes."""

from __future__ import annotations

import functools
from typing import NoReturn

from flask import current_app, g, request
from flask_smorest import abort

from booking.domain.errors import Forbidden, OriginNotAllowed
from booking.domain.policy import STAFF, Actor
from booking.services.tenancy import (
    KEY_PREFIX,
    PREFIXES,
    PUBLISHABLE_PREFIX,
    KeyCache,
    KeyFacts,
    digest,
    find_key,
    origin_allowed,
)

from . import db
from .config import policy_defaults

SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`nbk_...`, secret; or `pk_...`, publishable, for a booking page in a browser), "
    "sent as `Authorization: Bearer <key>`. In the Authorize box paste the key alone; a pasted `Bearer ` prefix "
    "is accepted too.",
}


def organization_id() -> str:
    """The organization of the key that made this request: every query filters on it."""
    return g.api_key.organization_id


def actor(override_reason: str | None = None) -> Actor:
    """Who asks, for the booking policy: the key's id and channel, and a staff key's override.

    A frontend key that sends `override_reason` is refused (403): it is bound by every policy."""
    key = authenticate()
    if override_reason and key.channel != STAFF:
        raise Forbidden("A frontend key cannot override a booking policy: send the request without override_reason.")
    return Actor(key.id, key.channel, override_reason or None, policy_defaults(current_app.config))


def require_staff(what: str) -> None:
    """Clinical facts are a staff key's to record: a frontend could otherwise satisfy the rules itself."""
    if authenticate().channel != STAFF:
        raise Forbidden(f"A frontend key cannot {what}; a staff key (front desk, clinic system) records it.")


def requires(scope: str, *, publishable: bool = False, key_shown_by_view: bool = False):
    """Authenticate the request and demand `scope` before the view runs.

    A publishable key (`pk_...`, in every visitor's browser) is refused (403) unless the view is one
    a booking page needs (`publishable=True`): deny by default, so a new route is closed to it.
    The scope and the flag are recorded on the function (`required_scope`, `publishable`) so a
    test can walk every route and check none is left unguarded.

    `key_shown_by_view` (a read whose view reads the database once anyway: availability): a key this
    worker has found before is taken from its KeyCache without a lookup, and the view shows it live
    in its own statement (`key_to_show`, then `shown_live`); a request whose key no statement of
    it has shown live looks it up before it answers, whatever the answer (a revoked key is a 401
    at once, never a 422 or a 403 first).
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = authenticate(cached=key_shown_by_view and request.method in ("GET", "HEAD"))
            if key.publishable and not publishable:
                _settle_key()
                abort(
                    403,
                    message="A publishable key (pk_...) may only do what a booking page does: read the bookable "
                    "clinics, treatment types and practitioners, search availability, hold, book that hold and "
                    "manage a booking with its manage token. Use a secret key (nbk_...) on a server for the rest.",
                )
            if scope not in key.scopes:
                _settle_key()
                abort(403, message=f"This API key lacks the '{scope}' scope.")
            _require_json_body()
            try:
                response = view(*args, **kwargs)
            except BaseException:
                _settle_key()
                raise
            _settle_key()
            return response

        wrapper.__dict__["required_scope"] = scope
        wrapper.__dict__["publishable"] = publishable
        docs = wrapper.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {})
        docs["security"] = [{"bearerAuth": []}]
        docs.setdefault("responses", {}).update(
            {
                "401": {"$ref": "#/components/responses/UNAUTHORIZED"},
                "403": {"$ref": "#/components/responses/FORBIDDEN"},
                "429": {"$ref": "#/components/responses/TOO_MANY_REQUESTS"},
            }
        )
        return wrapper

    return decorator


def bearer_token(header: str) -> str | None:
    """The key an Authorization header carries as `Bearer <key>`, or None.

    `Bearer Bearer <key>` counts as the key too: it is what Swagger UI sends when a person pastes
    the key with its prefix into the Authorize box, which already adds one.
    """
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip()
    again, _, key = token.partition(" ")
    if again.lower() == "bearer" and key.strip():
        token = key.strip()
    return token or None


def authenticate(*, cached: bool = False) -> KeyFacts:
    if "api_key" in g:
        return g.api_key
    header = request.headers.get("Authorization", "")
    token = bearer_token(header)
    if token is None:
        _unauthorized(_what_is_wrong(header))
    if cached:
        known = _keys().get(digest(token))
        if known is not None:  # on trust until shown live (_settle_key)
            g.api_key_unshown = token
            if known.publishable:
                try:
                    _check_origin(known)
                except OriginNotAllowed:
                    _settle_key()  # a revoked key is a 401 first
                    raise
            g.api_key = known
            return known
    key = _find(token)
    if cached:
        _keys().put(digest(token), key)
    if key.publishable:
        _check_origin(key)
    g.api_key = key
    return key


def _find(token: str) -> KeyFacts:
    key = find_key(db.session(), token)
    if key is None:
        if not token.startswith(PREFIXES):
            _unauthorized(
                f"That is not a Needlebook API key: keys start with '{KEY_PREFIX}' (secret) or "
                f"'{PUBLISHABLE_PREFIX}' (publishable)."
            )
        _unauthorized("The API key is unknown or revoked.")
    return key


def _check_origin(key: KeyFacts) -> None:
    """A browser names the page's origin in `Origin`; a publishable key answers only the origins it
    lists. A request without one (a server, curl) is not a browser's: the key is public anyway,
    so refusing it would protect nothing; what the list keeps is other sites' pages using it."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(key, origin):
        raise OriginNotAllowed(
            f"This publishable key is not for pages served from {origin[:200]}; add the origin to the key's "
            "origins (a new key) or use the key of that site.",
            origin=origin[:200],
        )


def _keys() -> KeyCache:
    return current_app.extensions.setdefault("needlebook_keys", KeyCache())


def key_to_show() -> str | None:
    """The id of the request's key when it was taken from the worker's cache: the view's statement
    should show it live (tenancy.key_live) and then call shown_live()."""
    return g.api_key.id if "api_key_unshown" in g else None


def shown_live() -> None:
    g.pop("api_key_unshown", None)


def _settle_key() -> None:
    """A key taken on trust that no statement of the request has shown live: looked up now."""
    token = g.pop("api_key_unshown", None)
    if token is not None:
        key = find_key(db.session(), token)
        if key is None:
            _keys().forget(digest(token))
            _unauthorized("The API key is unknown or revoked.")


def _what_is_wrong(header: str) -> str:
    if not header.strip():
        return "No Authorization header: send 'Authorization: Bearer <key>'."
    scheme = header.strip().partition(" ")[0]
    if scheme.lower() == "bearer":
        return "The Authorization header names no key: send 'Authorization: Bearer <key>'."
    return f"The Authorization header uses the '{scheme[:20]}' scheme: send 'Authorization: Bearer <key>'."


def _unauthorized(message: str) -> NoReturn:  # type: ignore[misc]  # flask_smorest's abort() raises but is untyped
    abort(401, message=message, headers={"WWW-Authenticate": "Bearer"})


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _require_json_body() -> None:
    """A body that is not JSON is a 415, whatever the view would have made of it."""
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if request.method in BODY_METHODS and has_body and not request.is_json:
        abort(415, message="Send the body as application/json.")
