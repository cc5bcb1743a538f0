"""Every failure is application/problem+json with a stable code, and a failed write writes nothing."""

from __future__ import annotations

import json
import logging

import pytest

from ..helpers import assert_problem
from .test_tenancy import ARGUMENT, BODIES, ITEM_ROUTES, body_for, build_world, fill

TIME_OFF = {"starts_at": "2030-03-04T09:00:00+00:00", "ends_at": "2030-03-04T10:00:00+00:00"}


@pytest.fixture
def world(admin):
    return build_world(admin)


def writes(world):
    """(method, path, a valid body) for a POST, a PATCH and a PUT, and a GET showing what they touch."""
    practitioner = f"/v1/practitioners/{world['practitioner_id']}"
    hours = [{"clinic_id": world["clinic_id"], "weekday": 2, "start": "10:00", "end": "12:00"}]
    return {
        "POST": ("/v1/clinics", {"name": "Leeds", "timezone": "Europe/London"}, "/v1/clinics"),
        "PATCH": (f"/v1/clinics/{world['clinic_id']}", {"name": "Renamed"}, f"/v1/clinics/{world['clinic_id']}"),
        "PUT": (f"{practitioner}/working-hours", hours, f"{practitioner}/working-hours"),
    }


def send(admin, method, path, **kwargs):
    return getattr(admin, method.lower())(path, **kwargs)


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
@pytest.mark.parametrize(
    "raw",
    [b'{"name": "Leeds",', b"{'name': 'Leeds'}", b"\xff\xfe", b"[" * 100_000],
    ids=["truncated", "single-quotes", "not-utf8", "nested-too-deep"],
)
def test_malformed_json_is_400_and_writes_nothing(admin, world, method, raw):
    path, _, check = writes(world)[method]
    before = admin.get(check).get_json()
    response = send(admin, method, path, data=raw, content_type="application/json")
    assert_problem(response, 400, "malformed_json")
    assert admin.get(check).get_json() == before


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
def test_body_that_is_not_json_is_415_and_writes_nothing(admin, world, method):
    path, body, check = writes(world)[method]
    before = admin.get(check).get_json()
    response = send(admin, method, path, data=json.dumps(body), content_type="text/plain")
    assert_problem(response, 415, "unsupported_media_type")
    assert admin.get(check).get_json() == before


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT"])
def test_unknown_field_is_422_naming_it_and_writes_nothing(admin, world, method):
    path, body, check = writes(world)[method]
    before = admin.get(check).get_json()
    body = [{**body[0], "colour": "red"}] if method == "PUT" else {**body, "colour": "red"}
    errors = assert_problem(send(admin, method, path, json=body), 422, "validation_error")["errors"]
    assert (errors["0"] if method == "PUT" else errors) == {"colour": ["Unknown field."]}
    assert admin.get(check).get_json() == before


def test_unknown_nested_field_is_422_naming_its_path(admin):
    hours = [{"weekday": 0, "start": "09:00", "end": "17:00", "lunch": "12:00"}]
    response = admin.post("/v1/clinics", json={"name": "Leeds", "timezone": "Europe/London", "opening_hours": hours})
    errors = assert_problem(response, 422, "validation_error")["errors"]
    assert errors == {"opening_hours": {"0": {"lunch": ["Unknown field."]}}}
    assert admin.get("/v1/clinics").get_json()["data"] == []


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/clinics/x/y/z", "/nope"])
def test_unknown_route_is_404_problem(admin, client, path):
    assert_problem(client.get(path), 404, "not_found")
    assert_problem(admin.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/v1/clinics", {"GET", "POST"}),
        ("PUT", "/v1/clinics/cln_x", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/v1/patients/pat_x", {"GET", "PATCH"}),
    ],
)
def test_wrong_method_is_405_with_allow(admin, method, path, allowed):
    response = send(admin, method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert method not in response.headers["Allow"]


def test_oversized_body_is_413_and_writes_nothing(admin, app):
    body = json.dumps({"name": "x" * app.config["MAX_CONTENT_LENGTH"], "timezone": "Europe/London"})
    response = admin.post("/v1/clinics", data=body, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")
    assert admin.get("/v1/clinics").get_json()["data"] == []


def test_unexpected_exception_is_a_500_that_leaks_nothing_and_is_logged(app, client, monkeypatch, caplog):
    def explode():
        raise RuntimeError("boom secret")

    monkeypatch.setitem(app.view_functions, "health.healthz", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/healthz", headers={"X-Request-ID": "support-1234"})

    body = assert_problem(response, 500, "internal_error")
    text = response.get_data(as_text=True)
    for leak in ("boom", "secret", "RuntimeError", "Traceback", "explode", ".py"):
        assert leak not in text
    assert body["request_id"] == response.headers["X-Request-ID"] == "support-1234"
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(logged) == 1 and "support-1234" in logged[0].getMessage()


def test_generated_request_id_of_a_500_is_in_body_header_and_log(app, client, monkeypatch, caplog):
    monkeypatch.setitem(app.view_functions, "health.healthz", lambda: 1 / 0)
    with caplog.at_level(logging.ERROR):
        response = client.get("/healthz")
    request_id = assert_problem(response, 500, "internal_error")["request_id"]
    assert request_id and request_id == response.headers["X-Request-ID"]
    assert any(request_id in r.getMessage() for r in caplog.records if r.exc_info)


def test_naive_instant_in_a_body_is_422_and_writes_nothing(admin, world):
    path = f"/v1/practitioners/{world['practitioner_id']}/time-off"
    before = admin.get(path).get_json()
    response = admin.post(path, json={**TIME_OFF, "starts_at": "2030-03-04T09:00:00"})
    assert set(assert_problem(response, 422, "validation_error")["errors"]) == {"starts_at"}
    assert admin.get(path).get_json() == before
    assert admin.post(path, json=TIME_OFF).status_code == 201  # the same with an offset is fine


def test_naive_instant_in_a_query_is_422(admin):
    response = admin.get("/v1/clinics", query_string={"updated_since": "2030-03-04T09:00:00"})
    assert set(assert_problem(response, 422, "validation_error")["errors"]) == {"updated_since"}


def test_sane_request_id_is_echoed(admin):
    response = admin.get("/v1/clinics", headers={"X-Request-ID": "frontend-abc-123"})
    assert response.headers["X-Request-ID"] == "frontend-abc-123"
    problem = admin.get("/v1/clinics/cln_missing", headers={"X-Request-ID": "frontend-abc-124"})
    assert assert_problem(problem, 404, "not_found")["request_id"] == "frontend-abc-124"
    assert problem.headers["X-Request-ID"] == "frontend-abc-124"


@pytest.mark.parametrize("sent", [None, "", "x" * 65, "bad\x01id"])
def test_missing_or_insane_request_id_is_replaced(admin, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    issued = admin.get("/v1/clinics", headers=headers).headers["X-Request-ID"]
    assert issued and issued != sent and len(issued) <= 64 and issued.isalnum()


# --- text no database can store: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8) ---------

UNSTORABLE = {"nul": "a\u0000b", "lone-surrogate": "a\ud800b"}


def string_fields(body) -> list[tuple]:
    """The path (keys and indexes) of every string in a JSON body."""
    if isinstance(body, str):
        return [()]
    items = body.items() if isinstance(body, dict) else enumerate(body) if isinstance(body, list) else ()
    return [(key, *rest) for key, value in items for rest in string_fields(value)]


def replaced(body, path: tuple, value):
    if not path:
        return value
    copy = dict(body) if isinstance(body, dict) else list(body)
    copy[path[0]] = replaced(body[path[0]], path[1:], value)
    return copy


def error_at(errors: dict, path: tuple):
    for key in path:
        errors = errors[str(key)]
    return errors


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_in_any_body_string_is_a_422_naming_the_field(admin, text):
    ids = build_world(admin)
    tried = 0
    for method, rule in BODIES:
        body = body_for(method, rule, ids)
        if method == "GET" or body is None:
            continue
        for path in string_fields(body):
            raw = json.dumps(replaced(body, path, text))  # "\u0000" and "\ud800" escapes, as a client sends them
            response = send(admin, method, fill(rule, ids), data=raw, content_type="application/json")
            errors = assert_problem(response, 422, "validation_error")["errors"]
            assert error_at(errors, path), (method, rule, path, errors)
            tried += 1
    assert tried > 40


@pytest.mark.parametrize("text", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_unstorable_text_in_a_key_or_a_nested_string_is_a_422_naming_its_path(admin, text):
    hours = [{"weekday": 0, "start": "09:00", "end": "17:00"}, {"weekday": 1, "start": text, "end": "17:00"}]
    raw = json.dumps({"name": "Leeds", "timezone": "Europe/London", "opening_hours": hours})
    response = admin.post("/v1/clinics", data=raw, content_type="application/json")
    assert assert_problem(response, 422, "validation_error")["errors"] == {
        "opening_hours": {"1": {"start": [UNSTORABLE_MESSAGE]}}
    }
    raw = json.dumps({"name": "Leeds", "timezone": "Europe/London", f"colour{text}": "red"})
    errors = assert_problem(
        admin.post("/v1/clinics", data=raw, content_type="application/json"), 422, "validation_error"
    )["errors"]
    assert list(errors) == [f"colour{text}"]
    assert admin.get("/v1/clinics").get_json()["data"] == []


UNSTORABLE_MESSAGE = "Must not contain NUL (U+0000) or an unpaired surrogate (U+D800 to U+DFFF)."


def test_nul_in_any_path_id_is_a_422_naming_the_argument(admin):
    ids = build_world(admin)
    for method, rule in ITEM_ROUTES:
        for argument in ARGUMENT.findall(rule):
            path = fill(rule, {**ids, argument: "x%00y"})
            body = body_for(method, rule, ids)
            response = send(admin, method, path, **({"json": body} if body is not None and method != "GET" else {}))
            errors = assert_problem(response, 422, "validation_error")["errors"]
            assert errors == {argument: [UNSTORABLE_MESSAGE]}, (method, rule, errors)


@pytest.mark.parametrize(
    "query",
    [
        {"patient_id": "pat\u0000x"},
        {"clinic_id": "\u0000"},
        {"cursor": "a\u0000"},
        {"practitioner_id": "x", "status\u0000": "booked"},
    ],
)
def test_nul_in_a_query_string_is_a_422_naming_the_parameter(admin, query):
    errors = assert_problem(admin.get("/v1/appointments", query_string=query), 422, "validation_error")["errors"]
    assert set(errors) == {name for name, value in query.items() if "\u0000" in name + value}


def test_nul_in_an_availability_search_is_a_422(admin, world):
    query = {
        "treatment_type_id": world["treatment_type_id"],
        "clinic_id": f"{world['clinic_id']}\u0000",
        "start": "2030-03-04T09:00:00Z",
        "end": "2030-03-05T09:00:00Z",
    }
    errors = assert_problem(admin.get("/v1/availability", query_string=query), 422, "validation_error")["errors"]
    assert set(errors) == {"clinic_id"}
