"""The suite's own check of every answer against the committed document (tests/conformance.py) can fail."""

from __future__ import annotations

import pytest
from flask import Response, jsonify

from tests.conformance import NonConformingResponse, check


@pytest.fixture
def healthz(app, monkeypatch):
    """Make GET /healthz answer what a test says, as a view that drifted from the document would."""

    def answer(response):
        monkeypatch.setitem(app.view_functions, "health.healthz", lambda: response)

    return answer


def test_a_documented_answer_passes(client):
    assert client.get("/healthz").status_code == 200


def test_an_undocumented_field_in_a_closed_schema_fails_the_test(app, client, healthz):
    with app.app_context():
        healthz(jsonify(status="ok", database="ok", uptime=3))
    with pytest.raises(NonConformingResponse, match=r"GET /healthz answered 200: .*'uptime' was unexpected"):
        client.get("/healthz")


def test_a_missing_required_field_fails_the_test(app, client, healthz):
    with app.app_context():
        healthz(jsonify(status="ok"))
    with pytest.raises(NonConformingResponse, match=r"GET /healthz answered 200: .*'database' is a required property"):
        client.get("/healthz")


def test_an_undocumented_status_fails_the_test(client, healthz):
    healthz(Response("", status=418))
    with pytest.raises(NonConformingResponse, match=r"GET /healthz answered 418: status 418 is not documented"):
        client.get("/healthz")


def test_another_content_type_fails_the_test(client, healthz):
    healthz(Response("<p>ok</p>", mimetype="text/html"))
    with pytest.raises(NonConformingResponse, match=r"content type 'text/html' is not documented"):
        client.get("/healthz")


def test_an_error_for_a_url_that_is_no_operation_must_still_be_a_problem(client):
    assert client.get("/v1/no-such-thing").status_code == 404


def test_an_undocumented_header_fails_the_test(app, client, healthz):
    with app.app_context():
        response = jsonify(status="ok", database="ok")
        response.headers["X-Powered-By"] = "needlebook"
        healthz(response)
    with pytest.raises(NonConformingResponse, match=r"the header 'x-powered-by' is not documented on this response"):
        client.get("/healthz")


def test_a_header_the_schema_refuses_fails_the_test(client, healthz):
    """A 503's Retry-After is documented as whole seconds."""
    healthz(Response("{}", status=503, mimetype="application/problem+json", headers={"Retry-After": "soon"}))
    with pytest.raises(
        NonConformingResponse, match=r"answered 503: the header 'retry-after' is 'soon', not an integer"
    ):
        client.get("/healthz")


def test_a_missing_required_header_fails_the_test(app, client):
    answer = client.get("/healthz")
    del answer.headers["X-Request-ID"]
    with pytest.raises(NonConformingResponse, match=r"the documented header 'x-request-id' is missing"):
        check(app, answer)


def test_every_answer_names_its_request_and_a_401_says_how_to_authenticate(client):
    answer = client.get("/v1/clinics")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer.headers["X-Request-ID"]
