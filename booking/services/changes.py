"""Loading an organization's object to change it: lock its row once, then compare its version.

Locking before comparing is what makes a conditional change hold under concurrency: of two
writers expecting the same version, the second waits for the first and then sees the version
it wrote. `expected_version=None` is an unconditional change.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain.errors import NotFound, VersionMismatch


def check_version(found, expected_version: int | None) -> None:
    if expected_version is not None and found.version != expected_version:
        raise VersionMismatch(f"{found.id} is at version {found.version}, not {expected_version}.")


def owned(model, org: str):
    """SELECT of the organization's live rows of `model` (as api/base.py's `scoped`)."""
    query = sa.select(model).where(model.organization_id == org)
    if hasattr(model, "archived_at"):
        query = query.where(model.archived_at.is_(None))
    return query


def load(db: Session, org: str, model, object_id: str, *, what: str | None = None, lock: bool = False):
    """The organization's live object (404 otherwise, as api/base.py's `get_or_404`)."""
    query = owned(model, org).where(model.id == object_id)
    if lock:  # and re-read: an object already in the session may hold an older version
        query = query.with_for_update(of=model).execution_options(populate_existing=True)
    found = db.scalar(query)
    if found is None:
        raise NotFound(f"No {what or model.__tablename__.rstrip('s').replace('_', ' ')} with id '{object_id}'.")
    return found


def load_for_change(
    db: Session, org: str, model, object_id: str, expected_version: int | None, *, what: str | None = None
):
    """The organization's live object, locked and re-read, at the expected version."""
    found = load(db, org, model, object_id, what=what, lock=True)
    check_version(found, expected_version)
    return found
