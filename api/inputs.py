"""Checks on every request's raw input, made once before any view: a request target or headers
over the limits, a body without a length that is over the limit, and text no database can store.

The limits on the request target and the headers are below the ones gunicorn.conf.py gives
gunicorn, so that the app answers them (414, 431) as problem+json; gunicorn's own answer past
its limits is an HTML page (README, "Conventions worth knowing").

A chunked body (Transfer-Encoding, no Content-Length) is not measured by werkzeug's
MAX_CONTENT_LENGTH check, which reads Content-Length; behind a server that streams it (gunicorn
sets `wsgi.input_terminated`) werkzeug cuts it at the limit instead, so a JSON body padded past
MAX_BODY_BYTES was read truncated and accepted. `BoundedBody` reads such a body itself, at most
the limit plus one byte: over the limit it is a 413, under it the view sees an ordinary body
with its Content-Length.

NUL (U+0000) is refused by PostgreSQL in any string, and an unpaired surrogate (JSON allows
"\\ud800") cannot be encoded as UTF-8 by either backend: either one would reach the database as a
500. They are refused as a 422 naming the field, wherever they come: a path id, a query parameter
(its name or its value), or any key or string of a JSON body. Running before the views (and before
the Idempotency-Key claim, which stores the path) means no view has to remember it.
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, request
from flask_smorest import abort
from werkzeug.exceptions import RequestEntityTooLarge

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "Must not contain NUL (U+0000) or an unpaired surrogate (U+D800 to U+DFFF)."
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The request target (path and query, as sent): gunicorn's default limit for the whole request line.
MAX_TARGET_BYTES = 4094
MAX_HEADER_BYTES = 8190  # one header line, name and value: gunicorn's default
MAX_HEADER_FIELDS = 100  # gunicorn's default
OVERSIZED = "needlebook.body_over_limit"
# The shared OpenAPI responses of these limits, described with their codes.
DESCRIPTIONS = {
    413: "`payload_too_large`: the body is over MAX_BODY_BYTES (256 KiB unless configured), whether it "
    "comes with a Content-Length or chunked",
    414: f"`uri_too_long`: the request target (path and query) is over {MAX_TARGET_BYTES} bytes",
    431: f"`header_fields_too_large`: a header line is over {MAX_HEADER_BYTES} bytes, or there are over "
    f"{MAX_HEADER_FIELDS} header fields",
}


def init_app(app: Flask) -> None:
    app.wsgi_app = BoundedBody(app.wsgi_app, app)  # type: ignore[method-assign]  # Flask's middleware pattern
    app.before_request(refuse_oversized_request)
    app.before_request(refuse_unstorable_text)


def refuse_oversized_request() -> None:
    if _target_bytes(request.environ) > MAX_TARGET_BYTES:
        abort(414, message=f"The request target (path and query) is longer than {MAX_TARGET_BYTES} bytes.")
    if len(request.headers) > MAX_HEADER_FIELDS:
        abort(431, message=f"The request has more than {MAX_HEADER_FIELDS} header fields.")
    for name, value in request.headers.items():
        if len(name) + len(": ") + len(value) > MAX_HEADER_BYTES:
            abort(431, message=f"The {name} header is longer than {MAX_HEADER_BYTES} bytes.")
    if request.environ.get(OVERSIZED):
        raise RequestEntityTooLarge(f"The body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes.")


def _target_bytes(environ) -> int:
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    return len(target) + (len(query) + 1 if query and "?" not in target else 0)


class BoundedBody:
    """WSGI middleware: a body of unknown length is read here, up to MAX_CONTENT_LENGTH + 1 bytes."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        limit = self.app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # The server has decoded the chunks: what is left is a body like any other, of this length.
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                environ[OVERSIZED], body = True, b""
            del environ["HTTP_TRANSFER_ENCODING"]
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.wsgi_app(environ, start_response)


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
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
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
