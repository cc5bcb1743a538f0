"""Bearer API keys and per-endpoint scopes."""

from __future__ import annotations

import functools

from flask import g, request
from flask_smorest import abort

from booking.services.tenancy import find_key

from . import db

SECURITY_SCHEME = {"type": "http", "scheme": "bearer", "description": "An API key: `Bearer nbk_...`"}


def organization_id() -> str:
    """The organization of the key that made this request: every query filters on it."""
    return g.api_key.organization_id


def requires(scope: str):
    """Authenticate the request and demand `scope` before the view runs.

    The scope is recorded on the function (`required_scope`) so a test can walk
    every route and check none is left unguarded.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            key = authenticate()
            if scope not in key.scopes:
                abort(403, message=f"This API key lacks the '{scope}' scope.")
            _require_json_body()
            return view(*args, **kwargs)

        wrapper.__dict__["required_scope"] = scope
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


def authenticate():
    if "api_key" in g:
        return g.api_key
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, message="Send an API key as 'Authorization: Bearer <key>'.", headers={"WWW-Authenticate": "Bearer"})
    key = find_key(db.session(), token.strip())
    if key is None:
        abort(401, message="The API key is unknown or revoked.", headers={"WWW-Authenticate": "Bearer"})
    g.api_key = key
    return key


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _require_json_body() -> None:
    """A body that is not JSON is a 415, whatever the view would have made of it."""
    has_body = request.content_length or request.headers.get("Transfer-Encoding")
    if request.method in BODY_METHODS and has_body and not request.is_json:
        abort(415, message="Send the body as application/json.")
