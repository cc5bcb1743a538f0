"""The edges of HTTP through a real gunicorn, started from the project root as `make run` does: it reads
/gunicorn.conf.py there, whose request line and header limits sit above the app's own (the same edges
through the test client: tests/api/test_http_edges.py).
"""

from __future__ import annotations

import http.client
import json

import pytest

from api import inputs
from migrations import upgrade

from ..api.test_http_edges import LIMIT, chunks, padded
from ..helpers import make_organization
from ..scaffold import ROOT, running_gunicorn


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn (one worker) on a fresh SQLite database, started from the project root as `make run` does."""
    url = f"sqlite:///{tmp_path_factory.mktemp('edges') / 'edges.sqlite3'}"
    upgrade(url)
    from api import create_app

    app = create_app({"DATABASE_URL": url, "RATE_LIMIT_ENABLED": False})
    token = make_organization(app, app.test_client(), "Edges").token
    with running_gunicorn(url, workers=1, timeout=30, env={"RATE_LIMIT_ENABLED": "0"}) as base:
        yield int(base.rsplit(":", 1)[1]), token


def exchange(served, method, path, body=None, headers=None):
    """(status, content type, decoded body) of one request on a connection of its own."""
    port, token = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type", ""), data
    finally:
        connection.close()


def problem_of(status, content_type, data, expected_status, code):
    assert (status, content_type) == (expected_status, "application/problem+json"), (status, content_type, data[:300])
    body = json.loads(data)
    assert body["status"] == expected_status and body["code"] == code, body
    return body


def clinic_names(served) -> list[str]:
    status, _, data = exchange(served, "GET", "/v1/clinics?limit=200")
    assert status == 200
    return [c["name"] for c in json.loads(data)["data"]]


# --- a body without a length (Transfer-Encoding: chunked) ----------------------------------------------


def test_a_chunked_body_over_the_limit_is_a_413_from_gunicorn_and_creates_nothing(served):
    body = padded({"name": "Padded past the limit", "timezone": "Europe/London"}, LIMIT + 1)
    answer = exchange(served, "POST", "/v1/clinics", body=chunks(body), headers={"Content-Type": "application/json"})
    problem_of(*answer, 413, "payload_too_large")
    assert "Padded past the limit" not in clinic_names(served)


def test_a_chunked_body_within_the_limit_is_read_whole_by_gunicorn(served):
    body = padded({"name": "Chunked", "timezone": "Europe/London"}, LIMIT)
    status, _, data = exchange(
        served, "POST", "/v1/clinics", body=chunks(body), headers={"Content-Type": "application/json"}
    )
    assert status == 201, data
    assert "Chunked" in clinic_names(served)


def test_a_request_target_over_the_limit_is_a_414_problem_from_gunicorn(served):
    path = "/v1/clinics?cursor=" + "a" * (inputs.MAX_TARGET_BYTES - len("/v1/clinics?cursor=") + 1)
    body = problem_of(*exchange(served, "GET", path), 414, "uri_too_long")
    assert str(inputs.MAX_TARGET_BYTES) in body["detail"]
    assert exchange(served, "GET", path[: inputs.MAX_TARGET_BYTES])[0] == 422  # at the limit: the app reads it


def test_a_header_over_the_limit_is_a_431_problem_from_gunicorn(served):
    value = "x" * (inputs.MAX_HEADER_BYTES - len("X-Note: ") + 1)
    body = problem_of(
        *exchange(served, "GET", "/v1/clinics", headers={"X-Note": value}), 431, "header_fields_too_large"
    )
    assert "X-Note" in body["detail"]
    assert exchange(served, "GET", "/v1/clinics", headers={"X-Note": value[:-1]})[0] == 200


def test_too_many_headers_are_a_431_problem_from_gunicorn(served):
    headers = {f"X-Note-{i}": "x" for i in range(inputs.MAX_HEADER_FIELDS)}
    problem_of(*exchange(served, "GET", "/v1/clinics", headers=headers), 431, "header_fields_too_large")


def test_the_app_answers_below_gunicorns_own_limits():
    """gunicorn.conf.py leaves room above the app's limits, so gunicorn's HTML page is never the answer
    to a request the app could refuse itself."""
    namespace: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)
    request_line = len("OPTIONS ") + inputs.MAX_TARGET_BYTES + len(" HTTP/1.1")
    assert namespace["limit_request_line"] >= request_line
    assert namespace["limit_request_field_size"] > inputs.MAX_HEADER_BYTES
    assert namespace["limit_request_fields"] > inputs.MAX_HEADER_FIELDS
