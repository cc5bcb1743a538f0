"""Every response a test client receives is checked against the committed OpenAPI document.

conftest.py makes `ConformingClient` the test client of every Flask app the suite builds, so a test
that gets an answer the document does not describe fails there, with the operation, the status and
what did not match: an undocumented operation or status, another content type, or a body the
response schema refuses (closed schemas refuse undocumented fields). The schemas are checked with
openapi-schema-validator's OpenAPI 3.0 dialect, read direction (readOnly allowed, writeOnly not).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.test import TestResponse

DOCUMENT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
DOCUMENT_URI = "urn:needlebook:openapi"

# What the document cannot describe: the documentation itself (the Swagger UI page and its assets,
# HTML and JavaScript), the document (it would have to contain itself), and the booking, manage and
# day-sheet pages with their scripts (api/pages.py: HTML for people, built on the documented API).
UNDESCRIBED = re.compile(r"^/(docs(/.*)?|openapi\.json|book/.*|day-sheet|pages/.*)$")
# A preflight is flask-cors answering for the operation; OpenAPI has no way to describe it.
UNDESCRIBED_METHODS = {"OPTIONS"}
JSON_TYPES = re.compile(r"^application/([a-z.+-]+\+)?json$")
# Headers of HTTP itself, which OpenAPI leaves undescribed (Content-Type is the content's key; CORS is
# flask-cors answering for the browser). Every other header an answer carries must be documented on
# that response, with a value its schema accepts, and a header documented as required must be there.
GENERIC_HEADERS = re.compile(r"^(content-type|content-length|vary|allow|date|access-control-.*)$", re.IGNORECASE)


class NonConformingResponse(AssertionError):
    pass


class ConformingClient(FlaskClient):
    """Flask's test client, checking each response (and each redirect hop) against the document."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        check(self.application, response)
        return response


@cache
def document() -> dict:
    return json.loads(DOCUMENT_PATH.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document(), default_specification=DRAFT4))


def check(app: Flask, response: TestResponse) -> None:
    """Raise NonConformingResponse unless the document describes `response`."""
    request = response.request
    method, path = request.method.upper(), request.path
    if method in UNDESCRIBED_METHODS or UNDESCRIBED.match(path):
        return
    operation, name = _operation(app, method, path)
    if operation is None:
        # No route, or not this method: the app answers 404 or 405 for a URL that is no operation, so
        # the only promise is that the answer is a problem like every other error.
        if response.status_code not in (404, 405):
            _fail(name, response, "the operation is not in the document")
        problem = {"content": {"application/problem+json": {"schema": {}}}}
        _check_body(name, response, "", problem, schema_pointer="/components/schemas/Problem")
        return
    responses = operation["responses"]
    status = str(response.status_code)
    key = status if status in responses else "default" if "default" in responses else None
    if key is None:
        _fail(name, response, f"status {status} is not documented (documented: {', '.join(responses)})")
    pointer = f"{name[1]}/responses/{key}"
    described_pointer, described = _resolve(pointer, responses[key])
    _check_headers(name, response, described)
    _check_body(name, response, described_pointer, described)


def _check_headers(name: tuple[str, str], response: TestResponse, described: dict) -> None:
    documented = {header.lower(): _resolve("", node)[1] for header, node in described.get("headers", {}).items()}
    present = {header.lower(): value for header, value in response.headers.items()}
    for header, spec in documented.items():
        if spec.get("required") and header not in present:
            _fail(name, response, f"the documented header {header!r} is missing")
    for header, value in present.items():
        if GENERIC_HEADERS.match(header):
            continue
        if header not in documented:
            _fail(name, response, f"the header {header!r} is not documented on this response")
        schema = documented[header].get("schema", {})
        typed: Any = value
        if schema.get("type") == "integer":
            try:
                typed = int(value)
            except ValueError:
                _fail(name, response, f"the header {header!r} is {value!r}, not an integer")
        errors = list(OAS30ReadValidator(schema, format_checker=oas30_format_checker).iter_errors(typed))
        if errors:
            _fail(name, response, f"the header {header!r} is {value!r}: {errors[0].message}")


def _operation(app: Flask, method: str, path: str) -> tuple[dict | None, tuple[str, str]]:
    lookup = "GET" if method == "HEAD" else method
    try:
        rule, _ = app.url_map.bind("localhost").match(path, method=lookup, return_rule=True)
    except (NotFound, MethodNotAllowed):
        return None, (f"{method} {path}", "")
    template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    operation = document()["paths"].get(template, {}).get(lookup.lower())
    pointer = f"/paths/{_escape(template)}/{lookup.lower()}"
    return operation, (f"{method} {template}", pointer)


def _resolve(pointer: str, node: dict) -> tuple[str, dict]:
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = document()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return pointer, node


def _check_body(
    name: tuple[str, str], response: TestResponse, pointer: str, described: dict, schema_pointer: str = ""
) -> None:
    content = described.get("content")
    if not content:
        if response.get_data():
            _fail(name, response, "the document describes no body, the response has one")
        return
    mimetype = response.mimetype
    if mimetype not in content:
        _fail(name, response, f"content type {mimetype!r} is not documented (documented: {', '.join(content)})")
    if not JSON_TYPES.match(mimetype) or "schema" not in content[mimetype]:
        return  # text/calendar: the type is the promise; the feed tests parse the body
    body = json.loads(response.get_data(as_text=True))
    schema_pointer = schema_pointer or f"{pointer}/content/{_escape(mimetype)}/schema"
    validator = OAS30ReadValidator(
        {"$ref": f"{DOCUMENT_URI}#{schema_pointer}"}, registry=_registry(), format_checker=oas30_format_checker
    )
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    if errors:
        reasons = "; ".join(f"at {_where(error)}: {error.message}" for error in errors[:5])
        _fail(name, response, f"the body does not match the schema: {reasons}")


def _where(error) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _fail(name: tuple[str, str], response: TestResponse, reason: str):
    raise NonConformingResponse(f"{name[0]} answered {response.status_code}: {reason}")
