"""Authentication and scopes on every /v1 route, built from the url_map rather than a hand list."""

from __future__ import annotations

import pytest

from ..helpers import Caller, assert_problem
from .test_tenancy import ROUTES, build_world, call, is_feed

# Routes anyone may call without a key.
PUBLIC = {"/healthz", "/openapi.json", "/docs", "/docs/assets/<path:filename>", "/static/<path:filename>"}
# The pages (api/pages.py): HTML and scripts that call the API with the page's publishable key or
# the staff key typed in; they read nothing themselves (the strings file is the catalog of the pages' own words).
PUBLIC |= {"/book/<slug>", "/book/<slug>/manage", "/day-sheet", "/pages/<name>", "/pages/i18n/<lang>.js"}
# Writes by a booking frontend; every other write is configuration.
BOOKING = (
    "/v1/patients",
    "/v1/courses",
    "/v1/course-plans",
    "/v1/holds",
    "/v1/appointments",
    "/v1/booking/",
    "/v1/manage/",
    "/v1/waitlist",
)


def expected_scope(method: str, rule: str) -> str:
    if rule.startswith(("/v1/api-keys", "/v1/webhooks", "/v1/calendar-feeds")):  # secrets and where data goes
        return "admin"
    if method == "GET":
        return "read"
    return "book" if rule.startswith(BOOKING) else "admin"


def view_methods(app):
    """(rule, method, the function that runs) for every route and HTTP method."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, getattr(view_class, method.lower()) if view_class else view


ROUTE_IDS = [f"{m} {r}" for m, r in ROUTES]


def test_every_v1_route_is_guarded_with_the_expected_scope(app):
    guarded = {
        (rule, method): getattr(function, "required_scope", None)
        for rule, method, function in view_methods(app)
        if rule.startswith("/v1/") and not is_feed(rule)
    }
    assert len(guarded) == len(ROUTES) > 0
    assert guarded == {(r, m): expected_scope(m, r) for m, r in ROUTES}


def test_only_the_public_routes_are_unguarded(app):
    unguarded = {rule for rule, _, function in view_methods(app) if not hasattr(function, "required_scope")}
    assert unguarded == PUBLIC | {rule for rule, _, _ in view_methods(app) if is_feed(rule)}


class RawCaller(Caller):
    """The test client sending exactly these headers, whatever they are."""

    def __init__(self, client, headers: dict):
        super().__init__(None, client, "", "")
        self.headers = headers

    def _headers(self, headers):
        return {**self.headers, **(headers or {})}


def revoked(admin) -> Caller:
    key = admin.create("/v1/api-keys", {"name": "Old", "scopes": ["read", "book", "admin"]})
    assert admin.delete(f"/v1/api-keys/{key['id']}").status_code == 204
    return Caller(admin.app, admin.client, key["key"], admin.organization_id)


@pytest.mark.parametrize("method, rule", ROUTES, ids=ROUTE_IDS)
def test_route_refuses_a_missing_or_bad_key(client, admin, method, rule):
    ids = build_world(admin)
    attempts = {
        "no header": {},
        "other scheme": {"Authorization": "Token x"},
        "valid key, other scheme": {"Authorization": f"Token {admin.token}"},
        "bare valid key": {"Authorization": admin.token},
        "no token": {"Authorization": "Bearer"},
        "blank token": {"Authorization": "Bearer  "},
        "unknown key": {"Authorization": "Bearer nbk_wrong"},
        "revoked key": {"Authorization": f"Bearer {revoked(admin).token}"},
    }
    for name, headers in attempts.items():
        response = call(RawCaller(client, headers), method, rule, ids)
        assert (name, response.status_code) == (name, 401)
        assert_problem(response, 401, "unauthorized")
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), name


@pytest.mark.parametrize("method, rule", ROUTES, ids=ROUTE_IDS)
def test_route_demands_its_scope(admin, method, rule):
    ids = build_world(admin)
    scope = expected_scope(method, rule)
    lacking = admin.with_scopes(*({"read", "book", "admin"} - {scope}))
    assert_problem(call(lacking, method, rule, ids), 403, "forbidden")

    allowed = call(admin.with_scopes(scope), method, rule, ids)
    assert allowed.status_code not in (401, 403), allowed.get_json()
    assert allowed.status_code < 300 or allowed.status_code == 409, allowed.get_json()


def test_a_key_pasted_with_its_bearer_prefix_into_swagger_uis_box_still_authenticates(admin, client):
    """Swagger UI adds `Bearer ` itself; a person who pastes `Bearer nbk_...` sends it twice."""
    response = client.get("/v1/clinics", headers={"Authorization": f"Bearer Bearer {admin.token}"})
    assert response.status_code == 200, response.get_json()
    assert client.get("/v1/clinics", headers={"Authorization": f"bearer  {admin.token} "}).status_code == 200


@pytest.mark.parametrize(
    "header, says",
    [
        (None, "No Authorization header"),
        ("Token abc", "uses the 'Token' scheme"),
        ("Bearer", "names no key"),
        ("Bearer abc123", "keys start with 'nbk_'"),
        ("Bearer nbk_wrong", "unknown or revoked"),
        ("Bearer Bearer nbk_wrong", "unknown or revoked"),
    ],
)
def test_a_401_says_what_was_wrong(client, header, says):
    response = client.get("/v1/clinics", headers={"Authorization": header} if header else {})
    assert_problem(response, 401, "unauthorized")
    assert says in response.get_json()["detail"]
