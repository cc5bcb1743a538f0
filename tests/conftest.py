"""Fixtures: the suite runs once per database backend (SQLite, and PostgreSQL when reachable).

Tests are in tiers, a folder and a marker each (TIERS below). Each backend's database is migrated
once with Alembic; each test runs inside a
transaction on one connection that is rolled back at the end, and every request
gets its own session joined to it with SAVEPOINTs, so a view's commit is real to
the next request of the test and nothing survives the test.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import sessionmaker

from api import create_app
from migrations import upgrade
from models import make_engine

from .conformance import ConformingClient
from .helpers import Caller, make_organization
from .scaffold import scratch_database

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    try:
        engine = make_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception:
        if os.environ.get("TEST_POSTGRES_URL") or os.environ.get("REQUIRE_POSTGRES"):
            raise
        return None


BACKENDS = [name for name in os.environ.get("TEST_BACKENDS", "sqlite,postgresql").split(",") if name]
# Every test lives in the folder of its tier and carries that tier's marker (pyproject.toml):
# `make check` runs domain and services on SQLite, `make test` all of them on both backends.
TIERS = ("domain", "services", "api", "process", "fuzz", "browser")
HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    # Every app a test builds (the fixtures' and the ones tests make with other settings) hands out a
    # client that checks each answer against the committed OpenAPI document (tests/conformance.py).
    Flask.test_client_class = ConformingClient


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="session")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(item.path).resolve().relative_to(HERE).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: a test belongs in a tier folder, one of tests/{{{','.join(TIERS)}}}/"
            )
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def backend(request, tmp_path_factory):
    """(name, url) of a freshly migrated database of this backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        upgrade(url)
        yield "sqlite", url
        return
    admin_url = _postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL is not reachable (set TEST_POSTGRES_URL)")
    with scratch_database(admin_url, "needlebook_test") as url:
        yield "postgresql", url


@pytest.fixture(scope="session")
def engine(backend):
    engine = make_engine(backend[1])
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _app(backend):
    """One app per backend; each test rebinds its sessions to the test's connection."""
    # Rate limits off: the suite makes thousands of requests with a handful of keys (tests/api/test_limits.py
    # builds apps with them on).
    app = create_app(
        {"DATABASE_URL": backend[1], "TESTING": True, "RATE_LIMIT_ENABLED": False}, sessionmaker=sessionmaker()
    )
    return app


@pytest.fixture
def connection(engine):
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        if transaction.is_active:
            transaction.rollback()


@pytest.fixture
def app(_app, connection):
    maker = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    _app.extensions["db_read_sessions"] = maker
    _app.extensions["db_write_sessions"] = maker
    return _app


@pytest.fixture
def db(app):
    """A session on the test's connection, for checking what the API wrote."""
    session = app.extensions["db_read_sessions"]()
    yield session
    session.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(app, client) -> Caller:
    """An admin key of a fresh organization."""
    return make_organization(app, client, "Acme Skin")


@pytest.fixture
def other(app, client) -> Caller:
    """An admin key of a second organization that must see nothing of the first."""
    return make_organization(app, client, "Rival Clinics")


@pytest.fixture
def clock(monkeypatch):
    """The domain's clock, frozen at Monday 4 January 2027 08:00 UTC; tests move it."""
    from booking.domain import clock as domain_clock

    from .booking_world import MONDAY, Clock

    fake = Clock(MONDAY + timedelta(hours=8))
    monkeypatch.setattr(domain_clock, "now", fake)
    return fake


@pytest.fixture
def world(admin, clock):
    from .booking_world import build_world

    return build_world(admin, clock)
