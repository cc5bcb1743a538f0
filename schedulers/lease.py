"""One scheduler acts at a time: a lease row with an expiry.

The holder renews it well before it runs out; a crashed holder's lease runs out
within `ttl`, and a standby scheduler takes it on its next try. Every job
transaction begins by renewing the lease (`fence`): on PostgreSQL that update locks
the row until the job's commit, so a standby cannot take the lease over halfway
through a job even if the holder stalled past its expiry; on SQLite the write
transaction is exclusive anyway.

Lease times are the machine's real clock, never the domain clock tests move.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from booking.domain import clock
from models import SchedulerLease

NAME = "scheduler"


_now = clock.wall_now  # see above


def acquire(db: Session, holder: str, ttl: timedelta) -> bool:
    """Renew our lease, or take it when it is free or has run out."""
    now = _now()
    taken = db.execute(
        sa.update(SchedulerLease)
        .where(
            SchedulerLease.name == NAME,
            sa.or_(SchedulerLease.holder == holder, SchedulerLease.expires_at <= now),
        )
        .values(
            expires_at=now + ttl,
            holder=holder,
            acquired_at=sa.case((SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now),
        )
        .execution_options(synchronize_session=False)
    )
    if cast(sa.CursorResult[Any], taken).rowcount == 1:  # Session.execute() is typed as a plain Result
        return True
    try:
        with db.begin_nested():
            db.add(SchedulerLease(name=NAME, holder=holder, expires_at=now + ttl, acquired_at=now))
    except IntegrityError:  # someone else holds it
        return False
    return True


def fence(db: Session, holder: str, ttl: timedelta) -> bool:
    """Renew the lease only if we still hold it; a job that gets False does nothing."""
    now = _now()
    renewed = db.execute(
        sa.update(SchedulerLease)
        .where(
            SchedulerLease.name == NAME,
            SchedulerLease.holder == holder,
            SchedulerLease.expires_at > now,
        )
        .values(expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return cast(sa.CursorResult[Any], renewed).rowcount == 1


def release(db: Session, holder: str) -> None:
    """On a clean shutdown: let a standby take over at once instead of after the ttl."""
    db.execute(
        sa.update(SchedulerLease)
        .where(SchedulerLease.name == NAME, SchedulerLease.holder == holder)
        .values(expires_at=_now())
        .execution_options(synchronize_session=False)
    )


def current(db: Session) -> SchedulerLease | None:
    return db.get(SchedulerLease, NAME)
