"""The committed OpenAPI document is the generated one, and the docs are served."""

import json
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
