"""Test helpers: an authenticated caller and factories with sensible defaults."""

from __future__ import annotations

from booking.services.tenancy import create_organization, issue_api_key


class Caller:
    """The test client with one API key: `caller.post(path, json=...)`."""

    def __init__(self, app, client, token: str, organization_id: str):
        self.app, self.client, self.token, self.organization_id = app, client, token, organization_id

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path, **kw):
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, **kw):
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path, **kw):
        return self.client.put(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path, **kw):
        return self.client.patch(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def with_headers(self, headers: dict) -> Caller:
        """The same key, sending `headers` (If-Match, Idempotency-Key) with every request."""
        caller = Caller(self.app, self.client, self.token, self.organization_id)
        caller._headers = lambda more: self._headers({**headers, **(more or {})})
        return caller

    def with_scopes(self, *scopes, channel="staff") -> Caller:
        """Another key of the same organization holding only `scopes` (a staff key unless told:
        the tests of scopes are not the tests of channels, tests/api/test_booking_policy.py)."""
        with self.app.extensions["db_write_sessions"]() as session:
            _, token = issue_api_key(session, self.organization_id, "test", scopes, channel)
            session.commit()
        return Caller(self.app, self.client, token, self.organization_id)

    # Factories: each creates through the API, so they exercise it, and returns the JSON.
    def create(self, path, payload, status=201):
        response = self.post(path, json=payload)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def make_clinic(self, **overrides):
        payload = {
            "name": "Soho",
            "timezone": "Europe/London",
            "opening_hours": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(6)],
            **overrides,
        }
        return self.create("/v1/clinics", payload)

    def make_room(self, clinic_id, **overrides):
        return self.create(
            f"/v1/clinics/{clinic_id}/rooms", {"name": "Room 1", "capabilities": ["needling"], **overrides}
        )

    def make_treatment_type(self, kind="microneedling", **overrides):
        return self.create("/v1/treatment-types", {"name": kind.title(), "kind": kind, **overrides})

    def make_practitioner(self, clinic_ids, **overrides):
        return self.create("/v1/practitioners", {"name": "Dr Who", "clinic_ids": clinic_ids, **overrides})

    def make_patient(self, **overrides):
        return self.create("/v1/patients", {"name": "Pat Smith", "email": "pat@example.com", **overrides})

    def make_course(self, patient_id, treatment_type_id, **overrides):
        return self.create(
            f"/v1/patients/{patient_id}/courses",
            {"treatment_type_id": treatment_type_id, "indication": "acne_scars", **overrides},
        )


def make_organization(app, client, name: str) -> Caller:
    with app.extensions["db_write_sessions"]() as session:
        organization, token = create_organization(session, name)
        session.commit()
    return Caller(app, client, token, organization.id)


def assert_problem(response, status: int, code: str):
    """The response is application/problem+json with this status and code."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert body["status"] == status and body["code"] == code, body
    assert {"type", "title", "detail"} <= body.keys(), body
    return body
