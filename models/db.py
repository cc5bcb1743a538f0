"""Engine and session setup for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_database_url() -> str:
    """Embedded SQLite in instance/, shared by the web app, the scheduler and the migrations."""
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'needlebook.sqlite3'}"


def normalize_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # No pre-ping (a round trip before every request's first statement): connections are recycled
    # before servers and proxies drop idle ones, and a read-only request that meets a dropped
    # connection anyway is run again on a fresh one (api/db.py).
    kwargs.setdefault("pool_recycle", 1800)
    return sa.create_engine(url, **kwargs)


def _configure_sqlite(engine: sa.Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take
    # it over (the SQLAlchemy pysqlite "serializable isolation" recipe) so that a
    # write transaction can start with BEGIN IMMEDIATE: it takes the write lock
    # before reading, so two writers are serialized instead of both checking for
    # an overlap, both finding none and both inserting.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: sa.Engine) -> sa.Engine:
    """The engine to bind a write transaction to (BEGIN IMMEDIATE on SQLite)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def make_sessionmaker(bind: sa.Engine | sa.Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False)
