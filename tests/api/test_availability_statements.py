"""What one availability search costs the database: the statements of GET /v1/availability, pinned.

A warm worker answers a practitioner-day or clinic-wide search with one statement: the window's
claims, time off and external busy times with the organization's stamp (setup_version and booking
policy), which proves the worker's cached catalog (treatment types, clinics, practitioners, rooms,
the organization's policy) and the clinic's set-up current, and with the API key's row if it is
live, which proves the key the worker took from its cache (api/auth.py). Counted with an event
listener on the engine, the test harness's own savepoint left out. And what that must not weaken:
a key revoked by any worker is refused at once, whatever else is wrong with the request.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from api import create_app

from ..helpers import Caller, assert_problem

# The window with the stamp and the key.
STATEMENTS = 1


def _search(world, **params) -> list[str]:
    query = {**_query(world), **params}
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


def test_a_practitioner_day_makes_one_statement(world, engine):
    _search(world, practitioner_id=world.practitioner["id"])  # warm: the first search of a worker reads the set-up
    own, data = _statements(engine, world, practitioner_id=world.practitioner["id"])
    assert data
    assert len(own) == STATEMENTS, "\n".join(s[:160] for s in own)
    assert all(table in own[0] for table in ("api_keys", "claims", "setup_version", "booking_policy"))


def test_a_clinic_wide_week_makes_one_statement(world, engine):
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


def test_a_key_first_seen_is_looked_up_then_shown_by_the_window(world, engine):
    key = world.caller.with_scopes("read")
    first, _ = _statements(engine, _as(world, key))
    assert sum("api_keys" in s for s in first) == 2, "\n".join(s[:160] for s in first)  # the lookup, the window
    again, _ = _statements(engine, _as(world, key))
    assert len(again) == STATEMENTS


# --- revocation -------------------------------------------------------------------------------------


def _as(world, caller: Caller):
    """The world, searched with another key (of the same organization) or through another app."""
    from dataclasses import replace

    return replace(world, caller=caller)


def _revoke(world, caller: Caller) -> None:
    key_id = next(
        k["id"] for k in world.caller.get("/v1/api-keys").get_json()["data"] if caller.token.startswith(k["prefix"])
    )
    assert world.caller.delete(f"/v1/api-keys/{key_id}").status_code == 204


BAD = {
    "a good request": {},
    "an unknown treatment type": {"treatment_type_id": "tt_nope"},
    "a window backwards": {"end": "2027-01-01T00:00:00+00:00"},
    "no treatment type": {"treatment_type_id": None},
}


@pytest.mark.parametrize("request_", sorted(BAD))
def test_a_revoked_key_is_refused_at_once_whatever_it_asks(world, request_):
    key = world.caller.with_scopes("read")
    for _ in range(2):
        _search(_as(world, key))  # found, then taken from the worker's cache
    _revoke(world, key)
    query = {
        "treatment_type_id": world.microneedling["id"],
        "start": world.at(day=1, hour=0),
        "end": world.at(day=2, hour=0),
        "clinic_id": world.clinic["id"],
        **BAD[request_],
    }
    refused = key.get("/v1/availability", query_string={k: v for k, v in query.items() if v is not None})
    assert_problem(refused, 401, "unauthorized")
    assert "revoked" in refused.get_json()["detail"]


def test_a_key_revoked_through_one_worker_is_refused_by_another_at_once(world, backend, connection):
    """Two apps (each with its own key cache) on one database: the key revoked through the first,
    which the second has cached, is refused by the second's next search."""
    maker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    second = create_app({"DATABASE_URL": backend[1], "TESTING": True, "RATE_LIMIT_ENABLED": False}, sessionmaker=maker)
    key = world.caller.with_scopes("read")
    there = Caller(second, second.test_client(), key.token, key.organization_id)
    for _ in range(2):
        assert _search(_as(world, there)) == _search(_as(world, key))
    _revoke(world, key)
    assert_problem(there.get("/v1/availability", query_string=_query(world)), 401, "unauthorized")
    assert_problem(key.get("/v1/availability", query_string=_query(world)), 401, "unauthorized")


def test_a_key_without_the_scope_is_a_403_unless_revoked(world):
    key = world.caller.with_scopes("book")
    assert_problem(key.get("/v1/availability", query_string=_query(world)), 403, "forbidden")
    _revoke(world, key)
    assert_problem(key.get("/v1/availability", query_string=_query(world)), 401, "unauthorized")


def _query(world) -> dict:
    return {
        "treatment_type_id": world.microneedling["id"],
        "start": world.at(day=1, hour=0),
        "end": world.at(day=2, hour=0),
        "clinic_id": world.clinic["id"],
    }


def test_a_cached_publishable_key_still_answers_only_its_origins_and_is_a_401_once_revoked(world):
    """A publishable key from the worker's cache: its origins are checked on every request, and a
    revoked one is a 401 before any origin refusal."""
    site = "https://book.example.com"
    made = world.caller.create("/v1/api-keys", {"name": "Site", "kind": "publishable", "origins": [site]})
    pk = Caller(world.caller.app, world.caller.client, made["secret"], world.caller.organization_id)
    for _ in range(2):  # found, then taken from the worker's cache
        answer = pk.get("/v1/availability", query_string=_query(world), headers={"Origin": site})
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == site
    other = pk.get("/v1/availability", query_string=_query(world), headers={"Origin": "https://evil.example.net"})
    assert_problem(other, 403, "origin_not_allowed")
    assert world.caller.delete(f"/v1/api-keys/{made['id']}").status_code == 204
    for origin in (site, "https://evil.example.net"):
        refused = pk.get("/v1/availability", query_string=_query(world), headers={"Origin": origin})
        assert_problem(refused, 401, "unauthorized")
