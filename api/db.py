"""The request's database session and its unit of work: one transaction per request.

Services work in it and flush; `api.transactions` commits the unit of work once a view's answer
is a success (with the Idempotency-Key's record of that answer), and the teardown rolls back
whatever was not committed, so a request that fails writes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from sqlalchemy.orm import Session

from booking.services.unit_of_work import UnitOfWork
from models import writer

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app, engine, sessionmaker=None) -> None:
    app.extensions["db_engine"] = engine
    # Writes bind to the writer engine: BEGIN IMMEDIATE on SQLite serializes them.
    app.extensions["db_read_sessions"] = sessionmaker or _maker(engine)
    app.extensions["db_write_sessions"] = sessionmaker or _maker(writer(engine))
    app.teardown_appcontext(_close)
    _retry_reads_on_disconnect(app)


def _retry_reads_on_disconnect(app) -> None:
    """A GET, HEAD or OPTIONS that met a connection the server had dropped (a restart, a failover,
    an idle timeout) runs once more on a fresh one: it wrote nothing, so nothing is done twice.
    SQLAlchemy has invalidated the pool's older connections by then. Writes are not retried: their
    client retries them with their Idempotency-Key."""
    dispatch = app.dispatch_request

    def dispatch_request():
        try:
            return dispatch()
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated or request.method not in READ_METHODS:
                raise
            _close()
            g.pop("api_key", None)  # loaded by the dropped session: found again
            g.pop("api_key_unshown", None)
            return dispatch()

    app.dispatch_request = dispatch_request


def _maker(bind):
    from models import make_sessionmaker

    return make_sessionmaker(bind)


def session() -> Session:
    if "db_session" not in g:
        reading = has_request_context() and request.method in READ_METHODS
        kind = "db_read_sessions" if reading else "db_write_sessions"
        g.db_session = current_app.extensions[kind]()
    return g.db_session


def unit_of_work() -> UnitOfWork:
    """The request's unit of work, over `session()`."""
    if "unit_of_work" not in g:
        g.unit_of_work = UnitOfWork(session())
    return g.unit_of_work


def _close(_exc=None) -> None:
    g.pop("unit_of_work", None)
    db = g.pop("db_session", None)
    if db is not None:
        db.rollback()
        db.close()


def end_transaction() -> None:
    """End the request's transaction before the view waits on something outside the database
    (fetching and expanding a calendar): on SQLite a write session holds the database's write lock
    from its first statement (the API key lookup), so every tenant's writes would wait too.

    Only reads (and what a hook committed to keep, such as an idempotency claim) can precede
    this, so committing loses nothing and keeps what is there; the view reloads what it needs
    afterwards, in a fresh, short transaction."""
    current = session()
    if current.new or current.dirty or current.deleted:
        raise RuntimeError("end_transaction() with unflushed changes: they would be committed early")
    unit_of_work().commit()
