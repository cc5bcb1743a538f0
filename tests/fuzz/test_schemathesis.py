"""The API against its own OpenAPI document, fuzzed by schemathesis (property-based, hypothesis).

Every operation is called with generated valid and invalid input, authenticated as an
admin of an organization that has a small clinic: no answer may be a 5xx, carry a
status the document does not list for that operation, or break its documented schema
or content type. On both backends (PostgreSQL enforces column lengths that SQLite
ignores, so it finds what SQLite cannot). Then the stateful phase: sequences of calls
chained through the links schemathesis infers from the document (a created clinic's id
fed to the operations that take a clinic id), so the fuzzer reaches objects that exist.
A bounded number of examples keeps it inside `make test`: FUZZ_EXAMPLES per operation
(default 15), FUZZ_SCENARIOS sequences (default 10) of up to FUZZ_STEPS calls (default 8);
`make fuzz` runs it at length.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api import create_app

from ..helpers import make_organization
from ..scaffold import fresh_database

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "10"))
STEPS = int(os.environ.get("FUZZ_STEPS", "8"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(backend, tmp_path_factory):
    """An app on a database of its own (the fuzzer writes freely), with one organization."""
    name, url = backend
    with fresh_database(name, url, tmp_path_factory.mktemp("fuzz"), "fuzz") as url:
        app = create_app({"DATABASE_URL": url, "TESTING": True, "RATE_LIMIT_ENABLED": False})
        caller = make_organization(app, app.test_client(), "Fuzz")
        clinic = caller.make_clinic()
        caller.make_room(clinic["id"])
        treatment_type = caller.make_treatment_type()
        caller.make_practitioner([clinic["id"]], treatment_type_ids=[treatment_type["id"]])
        caller.make_patient()
        yield app, caller.token
        app.extensions["db_engine"].dispose()


# The committed document, which tests/api/test_openapi.py keeps equal to the app's own.
schema = schemathesis.openapi.from_path(str(Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"))
# The stateless phase sends invalid input as well as valid; the stateful phase sends valid input only, so
# that its creates succeed and the ids they answer with lead to objects that exist.
schema.config.phases.stateful.generation.update(modes=["positive"])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_contract(case, fuzzed):
    app, token = fuzzed
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


def test_sequences_of_calls_keep_the_documented_contract(fuzzed):
    app, _ = fuzzed

    class Workflow(schema.as_state_machine()):
        def setup(self):
            # Each sequence in an organization of its own: it starts from the same (empty) state whatever
            # the sequences before it created, so Hypothesis sees the same answers when it replays one.
            self.token = make_organization(app, app.test_client(), "Fuzz sequence").token

        def get_call_kwargs(self, case):
            return {"app": app, "headers": {"Authorization": f"Bearer {self.token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
