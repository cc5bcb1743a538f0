"""What one availability search costs the database: the statements of GET /v1/availability, pinned.

A warm worker answers a practitioner-day or clinic-wide search with the API key's lookup and one
statement: the window's claims, time off and external busy times with the organization's stamp
(setup_version and booking policy), which proves the worker's cached catalog (treatment types,
clinics, practitioners, rooms, the organization's policy) and the clinic's set-up current. Counted
with an event listener on the engine, the test harness's own savepoint left out.
"""

from __future__ import annotations

from sqlalchemy import event

# The API key; the window with the stamp.
STATEMENTS = 2


def _search(world, **params) -> list[str]:
    query = {
        "treatment_type_id": world.microneedling["id"],
        "start": world.at(day=1, hour=0),
        "end": world.at(day=2, hour=0),
        "clinic_id": world.clinic["id"],
        **params,
    }
    response = world.caller.get("/v1/availability", query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def _statements(engine, world, **params) -> tuple[list[str], list]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        data = _search(world, **params)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return [s for s in statements if "SAVEPOINT" not in s], data


def test_a_practitioner_day_makes_the_key_lookup_and_one_statement(world, engine):
    _search(world, practitioner_id=world.practitioner["id"])  # warm: the first search of a worker reads the set-up
    own, data = _statements(engine, world, practitioner_id=world.practitioner["id"])
    assert data
    assert len(own) == STATEMENTS, "\n".join(s[:160] for s in own)
    assert "api_keys" in own[0]
    assert "claims" in own[-1] and "setup_version" in own[-1]


def test_a_clinic_wide_week_makes_the_key_lookup_and_one_statement(world, engine):
    _search(world)
    own, data = _statements(engine, world, end=world.at(day=8, hour=0))
    assert data
    assert len(own) == STATEMENTS, "\n".join(s[:160] for s in own)


def test_a_cold_worker_reads_the_catalog_and_the_set_up_once(world, engine):
    """The first search reads the catalog (stamp, treatment types, clinics, practitioners, rooms) and
    the clinic's set-up; the next one does not."""
    cold, _ = _statements(engine, world)
    warm, _ = _statements(engine, world)
    assert len(cold) > len(warm) == STATEMENTS, "\n".join(s[:160] for s in cold)
