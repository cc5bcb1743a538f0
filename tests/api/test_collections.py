"""Collections: cursor pagination, updated_since and strict query parameters."""

from datetime import UTC, datetime, timedelta

from ..helpers import assert_problem


def test_cursor_pagination_walks_every_clinic_once_and_survives_inserts(admin):
    created = [admin.make_clinic(name=f"Clinic {i}")["id"] for i in range(5)]
    first = admin.get("/v1/clinics?limit=2").get_json()
    assert [c["id"] for c in first["data"]] == created[:2]
    admin.make_clinic(name="Late arrival")  # inserted between two page reads
    second = admin.get(f"/v1/clinics?limit=2&cursor={first['next_cursor']}").get_json()
    third = admin.get(f"/v1/clinics?limit=2&cursor={second['next_cursor']}").get_json()
    seen = [c["id"] for page in (first, second, third) for c in page["data"]]
    assert seen[:5] == created and len(seen) == len(set(seen)) == 6
    assert third["next_cursor"] is None


def test_updated_since_returns_only_changed_objects(admin):
    old = admin.make_clinic(name="Old")
    marker = datetime.now(UTC) + timedelta(milliseconds=1)
    while datetime.now(UTC) <= marker:
        pass
    changed = admin.make_clinic(name="New")
    data = admin.get("/v1/clinics", query_string={"updated_since": marker.isoformat()}).get_json()["data"]
    assert [c["id"] for c in data] == [changed["id"]]
    assert admin.patch(f"/v1/clinics/{old['id']}", json={"name": "Old, renamed"}).status_code == 200
    data = admin.get("/v1/clinics", query_string={"updated_since": marker.isoformat()}).get_json()["data"]
    assert {c["id"] for c in data} == {old["id"], changed["id"]}


def test_a_garbage_cursor_is_refused(admin):
    body = assert_problem(admin.get("/v1/clinics?cursor=%25%25%25"), 422, "validation_error")
    assert "cursor" in body["errors"]
    assert_problem(admin.get("/v1/clinics?cursor=bm90LWFuLWlk"), 422, "validation_error")


def test_a_mistyped_query_parameter_is_refused_not_ignored(admin):
    admin.make_patient()
    body = assert_problem(admin.get("/v1/patients?emial=pat@example.com"), 422, "validation_error")
    assert "emial" in body["errors"]


def test_limit_must_be_between_1_and_200(admin):
    assert_problem(admin.get("/v1/clinics?limit=0"), 422, "validation_error")
    assert_problem(admin.get("/v1/clinics?limit=201"), 422, "validation_error")
    assert admin.get("/v1/clinics?limit=200").status_code == 200


def test_fractional_numbers_are_refused_not_truncated(admin):
    body = assert_problem(
        admin.post("/v1/treatment-types", json={"name": "Needling", "kind": "microneedling", "numbing_minutes": 30.5}),
        422,
        "validation_error",
    )
    assert "numbing_minutes" in body["errors"]
    assert admin.get("/v1/treatment-types").get_json()["data"] == []


def test_blank_names_are_refused(admin):
    body = assert_problem(admin.post("/v1/clinics", json={"name": "   ", "timezone": "UTC"}), 422, "validation_error")
    assert "name" in body["errors"]


def test_authentication_comes_before_the_body_is_looked_at(client):
    response = client.post("/v1/clinics", data="hello", content_type="text/plain")
    assert_problem(response, 401, "unauthorized")
