"""Without a pre-ping per request: a GET that meets a connection the server dropped still answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api import create_app
from models import make_engine

from ..helpers import make_organization
from ..scaffold import scratch_database


def test_a_get_after_the_server_killed_the_pooled_connection_answers_200(backend):
    name, url = backend
    if name != "postgresql":
        pytest.skip("pg_terminate_backend: PostgreSQL's")
    with scratch_database(url, "hc_reconnect") as fresh:
        app = create_app({"DATABASE_URL": fresh, "TESTING": True, "RATE_LIMIT_ENABLED": False})
        engine = app.extensions["db_engine"]
        assert not engine.pool._pre_ping
        invalidated = []
        sa.event.listen(engine, "invalidate", lambda *args: invalidated.append(1))
        caller = make_organization(app, app.test_client(), "Reconnect")
        assert caller.get("/v1/clinics").status_code == 200
        admin = make_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                killed = conn.execute(
                    sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": sa.make_url(fresh).database},
                ).scalar_one()
        finally:
            admin.dispose()
        assert killed >= 1
        response = caller.get("/v1/clinics")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert invalidated  # the dropped connection was met, and the request ran again
        engine.dispose()
