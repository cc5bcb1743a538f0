"""The unit of work: one transaction over a session, committed whole or not at all.

Every change goes through one: the API opens one per request (api/db.py) and commits it once
the answer is known, with the Idempotency-Key's record of that answer registered as a
before-commit hook, so a retry after any crash finds the answer or finds nothing done; the
scheduler's jobs open one per step (`transaction`). Services work inside it: they flush, so
the database's constraints and version guards speak while the service runs, and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker


class UnitOfWork:
    """Commits on leaving a `with` block without an error, rolls back otherwise."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._before_commit: list[Callable[[Session], None]] = []

    def before_commit(self, hook: Callable[[Session], None]) -> None:
        """Run `hook(session)` inside the transaction just before it commits (once)."""
        self._before_commit.append(hook)

    def commit(self) -> None:
        hooks, self._before_commit = self._before_commit, []
        for hook in hooks:
            hook(self.session)
        self.session.commit()

    def rollback(self) -> None:
        """Nothing done in the transaction is kept, nor are the hooks registered for it."""
        self._before_commit = []
        self.session.rollback()

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.rollback()


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A new session in its own unit of work, closed afterwards (a job's step, a command)."""
    with sessions() as session, UnitOfWork(session):
        yield session
