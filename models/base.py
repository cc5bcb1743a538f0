"""Declarative base, id generation and the aware-datetime column type."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column

from booking.domain import clock

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """A prefixed, time-ordered opaque id (48-bit milliseconds + 80 random bits).

    Ordering by id is ordering by creation, which keeps cursor pagination stable
    under inserts without a second sort column.
    """
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def now() -> datetime:
    """Column defaults read the domain's clock (looked up at each call, so a test's clock applies)."""
    return clock.now()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime stored as UTC.

    PostgreSQL keeps it as timestamptz; SQLite has no zone support, so the value is
    stored as naive UTC and made aware again on the way out. A naive datetime on
    the way in is a programming error, never silently assumed to be UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} given to an aware column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict] = {datetime: UTCDateTime()}


class Timestamped:
    """created_at/updated_at on every row: `updated_since` sync reads updated_at.

    `version` grows with every ORM update and guards it (SQLAlchemy's version_id_col:
    UPDATE ... WHERE version = <the version read>), so of two writers that read the same
    version only one can win; it is also the ETag. A bulk UPDATE must bump it itself.
    """

    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now, index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    if TYPE_CHECKING:  # what every mapped class that mixes this in has
        __table__: ClassVar[sa.FromClause]

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}


@event.listens_for(Session, "before_flush")
def _touch_when_only_collections_change(session: Session, _flush_context: object, _instances: object) -> None:
    """Replacing a clinic's opening hours or a practitioner's clinics writes only child or
    association rows, so the parent's row would get no UPDATE and keep its version (its ETag)
    and its updated_at (incremental sync); setting updated_at gives it that UPDATE."""
    for obj in session.dirty:
        if (
            isinstance(obj, Timestamped)
            and session.is_modified(obj)
            and not sa.inspect(obj).attrs.updated_at.history.has_changes()
        ):
            touch(obj)


def touch(obj: Timestamped) -> None:
    """Mark a row changed when only rows that hang off it changed (a resolved contraindication).

    Later than the value stored even if the clock stands still (a test's clock): an equal
    value would be no change, and there would be no UPDATE after all."""
    stored: datetime | None = obj.updated_at  # None on a row not yet written
    obj.updated_at = clock.now() if stored is None else max(clock.now(), stored + timedelta(microseconds=1))


def org_fk() -> Mapped[str]:
    return mapped_column(sa.ForeignKey("organizations.id"), index=True)
