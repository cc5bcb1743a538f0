"""The committed OpenAPI document is the generated one, and the docs are served."""

import json
import re
from pathlib import Path

from api import create_app

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_generated_document(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})
    with app.app_context():
        generated = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    committed = json.loads(COMMITTED.read_text())
    assert committed == json.loads(json.dumps(generated)), "openapi/ drifted: run `make openapi` and commit"


def test_openapi_json_docs_and_health_need_no_key(client, backend):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200 and spec.get_json()["openapi"].startswith("3.")
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.data
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok", "database": "ok"}


def test_every_operation_documents_its_errors_as_problem_json(client):
    spec = client.get("/openapi.json").get_json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/v1") or method == "parameters":
                continue
            if path.endswith("/calendar.ics"):  # calendar apps send a feed token, not an API key
                assert operation.get("security") == [{"feedToken": []}], (method, path)
                assert "404" in operation["responses"], (method, path)
                continue
            assert operation.get("security") == [{"bearerAuth": []}], (method, path)
            assert {"401", "403"} <= operation["responses"].keys(), (method, path)
    problem = spec["components"]["responses"]["UNAUTHORIZED"]["content"]
    assert list(problem) == ["application/problem+json"]


def committed_operations() -> list[tuple[str, str, dict]]:
    spec = json.loads(COMMITTED.read_text())
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
    ]


def test_every_operation_has_a_unique_camel_case_operation_id():
    ids = [operation.get("operationId") for _, _, operation in committed_operations()]
    assert all(isinstance(operation_id, str) for operation_id in ids), [
        (method, path) for method, path, operation in committed_operations() if "operationId" not in operation
    ]
    assert [name for name in ids if not re.fullmatch(r"[a-z]+(?:[A-Z0-9][a-z0-9]*)*", name)] == []
    assert sorted(name for name in set(ids) if ids.count(name) > 1) == []


def test_operation_ids_read_as_what_the_operation_does():
    ids = {(method, path): operation["operationId"] for method, path, operation in committed_operations()}
    assert ids[("get", "/v1/clinics")] == "listClinics"
    assert ids[("post", "/v1/clinics")] == "createClinic"
    assert ids[("get", "/v1/clinics/{clinic_id}")] == "getClinic"
    assert ids[("patch", "/v1/clinics/{clinic_id}")] == "updateClinic"
    assert ids[("delete", "/v1/clinics/{clinic_id}")] == "deleteClinic"
    assert ids[("get", "/v1/availability")] == "searchAvailability"
    assert ids[("post", "/v1/holds")] == "createHold"
    assert ids[("delete", "/v1/holds/{hold_id}")] == "releaseHold"
    assert ids[("post", "/v1/appointments")] == "createAppointment"
    assert ids[("patch", "/v1/appointments/{appointment_id}")] == "rescheduleAppointment"
    assert ids[("post", "/v1/appointments/{appointment_id}/cancel")] == "cancelAppointment"
    assert ids[("post", "/v1/appointments/{appointment_id}/check-in")] == "checkInAppointment"
    assert ids[("get", "/v1/follow-ups/{follow_up_id}")] == "getFollowUp"
    assert ids[("put", "/v1/practitioners/{practitioner_id}/working-hours")] == "replacePractitionerWorkingHours"
    assert ids[("get", "/v1/calendar-feeds")] == "listCalendarFeeds"
    assert ids[("get", "/v1/rooms/{room_id}/calendar.ics")] == "getRoomCalendar"
    assert ids[("get", "/healthz")] == "getHealth"
    assert ids[("get", "/fhir/R4/Practitioner/{resource_id}")] == "fhirReadPractitioner"


def test_the_override_table_names_only_operations_that_exist(tmp_path):
    from api.conventions import OPERATION_IDS

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"})
    methods = {(rule.endpoint, method.lower()) for rule in app.url_map.iter_rules() for method in rule.methods or ()}
    assert [key for key in OPERATION_IDS if key not in methods] == []


def test_the_document_names_a_relative_server_and_describes_every_tag():
    spec = json.loads(COMMITTED.read_text())
    assert spec["servers"] == [{"url": "/", "description": "This host: paths start at /v1, /fhir/R4 or /healthz"}]
    assert spec["tags"] and all(tag.get("description") for tag in spec["tags"])
    used = {tag for _, _, operation in committed_operations() for tag in operation.get("tags", [])}
    assert used <= {tag["name"] for tag in spec["tags"]}


def test_public_operations_say_they_need_no_key():
    public = [(method, path) for method, path, operation in committed_operations() if operation.get("security") == []]
    assert public == [("get", "/healthz")]
    assert [(m, p) for m, p, operation in committed_operations() if "security" not in operation] == []
