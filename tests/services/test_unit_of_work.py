"""The unit of work: what is done in it commits together, with its before-commit hooks, or not at all."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from booking.services.unit_of_work import UnitOfWork, transaction
from models import Organization


def _names(app) -> set[str]:
    with app.extensions["db_read_sessions"]() as session:
        return set(session.scalars(sa.select(Organization.name)))


def test_a_hook_runs_inside_the_transaction_it_commits_with(app):
    sessions = app.extensions["db_write_sessions"]
    with sessions() as session:
        work = UnitOfWork(session)
        session.add(Organization(name="Work"))
        work.before_commit(lambda s: s.add(Organization(name="Record of the work")))
        work.commit()
    assert {"Work", "Record of the work"} <= _names(app)


def test_a_rollback_keeps_neither_the_work_nor_its_hooks(app):
    sessions = app.extensions["db_write_sessions"]
    with sessions() as session:
        work = UnitOfWork(session)
        session.add(Organization(name="Refused"))
        work.before_commit(lambda s: s.add(Organization(name="Record of the refused")))
        work.rollback()
        work.commit()  # a commit after the rollback has nothing left to write
    assert not {"Refused", "Record of the refused"} & _names(app)


def test_an_error_in_a_transaction_writes_nothing(app):
    with pytest.raises(RuntimeError), transaction(app.extensions["db_write_sessions"]) as session:
        session.add(Organization(name="Half done"))
        session.flush()
        raise RuntimeError("crash")
    assert "Half done" not in _names(app)


def test_a_transaction_without_an_error_commits(app):
    with transaction(app.extensions["db_write_sessions"]) as session:
        session.add(Organization(name="Done"))
    assert "Done" in _names(app)
