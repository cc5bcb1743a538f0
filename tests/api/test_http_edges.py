"""The edges of HTTP itself, through the test client: bodies without a length, request lines and
headers over the limits. Every answer is problem+json, never a server's HTML page.

The same edges through a real gunicorn, whose own limits sit above the app's (api/inputs.py), are in
tests/process/test_gunicorn_limits.py.
"""

from __future__ import annotations

import json

from api import inputs

from ..helpers import assert_problem
from .test_openapi import COMMITTED

LIMIT = 256 * 1024  # MAX_BODY_BYTES' default


def padded(body: dict, size: int) -> bytes:
    """Valid JSON of `size` bytes: the body, then whitespace (JSON allows it after the value)."""
    data = json.dumps(body).encode()
    return data + b" " * (size - len(data))


def chunks(data: bytes, size: int = 16 * 1024):
    return [data[i : i + size] for i in range(0, len(data), size)]


def post_chunked(admin, body: bytes):
    import io

    return admin.post(
        "/v1/clinics",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    )


def test_a_chunked_body_over_the_limit_is_a_413_and_creates_nothing(admin):
    assert_problem(
        post_chunked(admin, padded({"name": "Over", "timezone": "Europe/London"}, LIMIT + 1)), 413, "payload_too_large"
    )
    assert admin.get("/v1/clinics").get_json()["data"] == []


def test_a_chunked_body_within_the_limit_is_read_whole(admin):
    response = post_chunked(admin, padded({"name": "Under", "timezone": "Europe/London"}, LIMIT))
    assert response.status_code == 201, response.get_json()


# --- request lines and headers over the limits -----------------------------------------------------------


def test_a_request_target_over_the_limit_is_a_414_problem(admin):
    response = admin.get("/v1/clinics", query_string={"cursor": "a" * inputs.MAX_TARGET_BYTES})
    assert_problem(response, 414, "uri_too_long")


def test_a_header_over_the_limit_is_a_431_problem(admin):
    response = admin.get("/v1/clinics", headers={"X-Note": "x" * inputs.MAX_HEADER_BYTES})
    assert_problem(response, 431, "header_fields_too_large")


def test_the_limits_hold_for_the_health_check_as_its_document_says(client):
    response = client.get("/healthz", query_string={"probe": "a" * inputs.MAX_TARGET_BYTES})
    assert_problem(response, 414, "uri_too_long")
    assert_problem(
        client.get("/healthz", headers={"X-Note": "x" * inputs.MAX_HEADER_BYTES}), 431, "header_fields_too_large"
    )
    operation = json.loads(COMMITTED.read_text())["paths"]["/healthz"]["get"]
    assert {"414", "431"} <= operation["responses"].keys()


def test_answers_encoded_by_orjson_are_the_json_flask_would_write(app):
    """The same values (UTF-8 text instead of \\u escapes), dates as Flask writes them, and Flask's own
    encoder for what orjson refuses."""
    import json
    from dataclasses import dataclass
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from flask.json.provider import DefaultJSONProvider

    @dataclass
    class Point:
        x: int

    value = {"b": "Zoë ✓", "a": [1, 2.5, None, True], "when": datetime(2027, 1, 4, 8, tzinfo=UTC),
             "day": date(2027, 1, 4), "cost": Decimal("1.10"), "point": Point(3), "big": 2**70}  # fmt: skip
    with app.app_context():
        fast = app.json.response(value)
        plain = DefaultJSONProvider(app)
        plain.sort_keys = False
        expected = plain.response(value).get_data()
        assert json.loads(fast.get_data()) == json.loads(expected)
        without_big = {k: v for k, v in value.items() if k != "big"}
        body = app.json.response(without_big).get_data()
        assert json.loads(body) == json.loads(plain.response(without_big).get_data())
        assert list(json.loads(body)) == list(without_big)  # keys in order
        assert "Zoë".encode() in body  # orjson's, not the fallback
