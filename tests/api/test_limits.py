"""Rate limits per API key (429 problem+json with Retry-After) and CORS for browser frontends."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from sqlalchemy.orm import sessionmaker

from api import create_app

from ..helpers import assert_problem, make_organization


def build(backend, connection, **config):
    """An app of its own (fresh limiter counters) bound to the test's rolled-back connection."""
    maker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return create_app({"DATABASE_URL": backend[1], "TESTING": True, **config}, sessionmaker=maker)


@pytest.fixture
def limited(backend, connection):
    app = build(backend, connection, RATE_LIMIT="3 per minute")
    client = app.test_client()
    return app, client, make_organization(app, client, "Limited")


def test_the_fourth_request_in_a_minute_is_a_429_with_retry_after(limited):
    _, _, caller = limited
    for _ in range(3):
        assert caller.get("/v1/clinics").status_code == 200
    refused = caller.get("/v1/clinics")
    body = assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 per 1 minute" in body["detail"]


def test_limits_count_per_api_key(limited):
    app, client, caller = limited
    other = make_organization(app, client, "Other")
    for _ in range(3):
        caller.get("/v1/clinics")
    assert caller.get("/v1/clinics").status_code == 429
    assert other.get("/v1/clinics").status_code == 200


def test_rate_limit_headers_tell_what_is_left(limited):
    _, _, caller = limited
    response = caller.get("/v1/clinics")
    assert response.headers["X-RateLimit-Limit"] == "3" and response.headers["X-RateLimit-Remaining"] == "2"
    assert "Retry-After" not in response.headers


def test_health_and_docs_are_not_limited(limited):
    _, client, _ = limited
    assert all(client.get("/healthz").status_code == 200 for _ in range(6))
    assert all(client.get("/openapi.json").status_code == 200 for _ in range(6))


# This run's counters carry a prefix of their own, so parallel runs on one Redis never share a count.
RUN_PREFIX = f"needlebook-test-{uuid.uuid4().hex[:8]}"


def _redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    host, port = url.split("//")[1].split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        if os.environ.get("REQUIRE_REDIS"):
            raise
        return None
    return url


def test_with_redis_every_worker_counts_together(backend, connection):
    """Two app instances (two gunicorn workers, two nodes) share one count through Redis."""
    url = _redis_url()
    if url is None:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379 (set TEST_REDIS_URL, or REQUIRE_REDIS=1 to fail)")
    shared = {"RATE_LIMIT": "3 per minute", "REDIS_URL": url, "RATELIMIT_KEY_PREFIX": RUN_PREFIX}
    first = build(backend, connection, **shared)
    second = build(backend, connection, **shared)
    caller = make_organization(first, first.test_client(), f"Shared {uuid.uuid4().hex}")
    elsewhere = type(caller)(second, second.test_client(), caller.token, caller.organization_id)
    assert caller.get("/v1/clinics").status_code == 200
    assert elsewhere.get("/v1/clinics").status_code == 200
    assert caller.get("/v1/clinics").status_code == 200
    assert_problem(elsewhere.get("/v1/clinics"), 429, "rate_limited")


ORIGIN = "https://book.example.com"


def test_cors_preflight_for_an_allowed_origin(backend, connection):
    client = build(backend, connection, CORS_ORIGINS=[ORIGIN]).test_client()
    response = client.options(
        "/v1/appointments",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key, If-Match",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed


def test_cors_exposes_the_headers_a_frontend_reads(backend, connection):
    app = build(backend, connection, CORS_ORIGINS=[ORIGIN])
    caller = make_organization(app, app.test_client(), "Cors")
    response = caller.get("/v1/clinics", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "retry-after", "x-request-id", "location"} <= exposed


def test_other_origins_get_no_cors_headers(backend, connection):
    client = build(backend, connection, CORS_ORIGINS=[ORIGIN]).test_client()
    response = client.options(
        "/v1/clinics", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_unless_configured(client):
    response = client.options("/v1/clinics", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/fhir/R4/metadata", "/healthz", "/openapi.json"])
def test_fhir_health_and_the_document_answer_allowed_browsers_too(backend, connection, path):
    client = build(backend, connection, CORS_ORIGINS=[ORIGIN]).test_client()
    preflight = client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    response = client.get(path, headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers.get("Vary", "")


@pytest.mark.parametrize("origin", [ORIGIN, "https://evil.example", None])
def test_every_answer_varies_on_origin_so_a_cache_never_mixes_them(backend, connection, origin):
    client = build(backend, connection, CORS_ORIGINS=[ORIGIN]).test_client()
    response = client.get("/v1/clinics", headers={"Origin": origin} if origin else {})
    assert response.status_code == 401
    assert "Origin" in {v.strip() for v in response.headers.get("Vary", "").split(",")}


def test_a_browser_can_read_that_an_answer_is_a_replay(backend, connection):
    app = build(backend, connection, CORS_ORIGINS=[ORIGIN])
    caller = make_organization(app, app.test_client(), "Cors")
    response = caller.get("/v1/clinics", headers={"Origin": ORIGIN})
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert "idempotent-replayed" in exposed


def test_the_memory_storage_starts_no_thread_per_request(limited, monkeypatch):
    """limits' MemoryStorage starts a Timer 10 ms after a hit whenever the last one has ended; the
    app's storage sweeps inline, and still refuses the fourth request."""
    import threading

    from api.limits import InlineSweepMemoryStorage

    app, _, caller = limited
    storage = app.extensions["needlebook_limiter"].storage
    assert isinstance(storage, InlineSweepMemoryStorage)
    started = []
    real = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self), real(self)))
    for _ in range(3):
        assert caller.get("/v1/clinics").status_code == 200
        threading.Event().wait(0.02)  # longer than the Timer's 10 ms: each hit would start one
    assert caller.get("/v1/clinics").status_code == 429
    assert started == []


def test_the_inline_sweep_frees_what_expired(monkeypatch):
    """Two seconds on (the time module's clocks, which limits reads too), a hit sweeps what expired."""
    import time

    from api.limits import InlineSweepMemoryStorage

    storage = InlineSweepMemoryStorage()
    assert storage.acquire_entry("a", limit=5, expiry=1)
    assert storage.incr("b", expiry=1) == 1
    monotonic, wall = time.monotonic() + 2, time.time() + 2
    monkeypatch.setattr(time, "monotonic", lambda: monotonic)
    monkeypatch.setattr(time, "time", lambda: wall)
    assert storage.acquire_entry("c", limit=5, expiry=1)
    assert storage.events["a"] == [] and "b" not in storage.storage and len(storage.events["c"]) == 1
