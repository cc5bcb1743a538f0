"""Checks on every request's raw input, made once before any view: text no database can store.

NUL (U+0000) is refused by PostgreSQL in any string, and an unpaired surrogate (JSON allows
"\\ud800") cannot be encoded as UTF-8 by either backend: either one would reach the database as a
500. They are refused as a 422 naming the field, wherever they come: a path id, a query parameter
(its name or its value), or any key or string of a JSON body. Running before the views (and before
the Idempotency-Key claim, which stores the path) means no view has to remember it.
"""
from __future__ import annotations

import re

from flask import request
from flask_smorest import abort

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "Must not contain NUL (U+0000) or an unpaired surrogate (U+D800 to U+DFFF)."
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app) -> None:
    app.before_request(refuse_unstorable_text)


def refuse_unstorable_text() -> None:
    errors: dict = {}
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and UNSTORABLE.search(value):
            errors[name] = [MESSAGE]
    for name, value in request.args.items(multi=True):
        if UNSTORABLE.search(name) or UNSTORABLE.search(value):
            errors[name] = [MESSAGE]
    for path in _unstorable_paths(_json_body()):
        _nest(errors, path)
    if errors:
        abort(422, errors=errors)


def _json_body():
    """The decoded JSON body, or None: a body that is not JSON is left to the view's own answer
    (400 malformed_json, 415), as is one nested too deeply to decode."""
    if request.method not in BODY_METHODS or not request.is_json:
        return None
    try:
        return request.get_json(silent=True)  # cached: the view's parser decodes the same bytes
    except RecursionError:
        return None


def _unstorable_paths(document):
    """The path (keys and list indexes) of every key or string in `document` that holds unstorable text.

    Iterative: a document json.loads could decode may be deeper than this function could recurse.
    """
    stack = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if UNSTORABLE.search(value):
                yield path
        elif isinstance(value, dict):
            for key, item in value.items():
                if UNSTORABLE.search(key):
                    yield (*path, key)
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))


def _nest(errors: dict, path: tuple) -> None:
    """Errors shaped as marshmallow's: {"opening_hours": {1: {"start": [message]}}}."""
    if not path:
        errors["_schema"] = [MESSAGE]
        return
    for key in path[:-1]:
        errors = errors.setdefault(key, {})
    errors[path[-1]] = [MESSAGE]
