"""Loading an organization's object to change it: lock its row once, then compare its version.

Locking before comparing is what makes a conditional change hold under concurrency: of two
writers expecting the same version, the second waits for the first and then sees the version
it wrote. `expected_version=None` is an unconditional change.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy.orm import Session

from booking.domain.errors import NotFound, VersionMismatch
from booking.services.queries import of_organization


def replace_rows(parent, attribute: str, model, entries: list[dict]) -> bool:
    """Replace a list of child rows (opening hours, closures, shifts) unless it already holds
    these very values, in any order; True when it changed. New rows equal to the old would
    still be a change to the ORM, and give the parent a new version for nothing."""
    fields = sorted({field for entry in entries for field in entry})
    rows = getattr(parent, attribute)
    current = Counter(tuple(getattr(row, f) for f in fields) for row in rows)
    wanted = Counter(tuple(entry.get(f) for f in fields) for entry in entries)
    if current == wanted and len(rows) == len(entries):
        return False
    setattr(parent, attribute, [model(**entry) for entry in entries])
    return True


def check_version(found, expected_version: int | None) -> None:
    if expected_version is not None and found.version != expected_version:
        raise VersionMismatch(f"{found.id} is at version {found.version}, not {expected_version}.")


def load(db: Session, org: str, model, object_id: str, *, what: str | None = None, lock: bool = False):
    """The organization's object still in use, or NotFound (the same for another organization's,
    an archived and a missing one)."""
    query = of_organization(model, org).where(model.id == object_id)
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
