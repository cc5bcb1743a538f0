"""Calendar integration: feed tokens for iCalendar subscriptions, and external busy times."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped, new_id, org_fk

FEED_OWNERS = ("practitioner", "room", "clinic")


class CalendarFeed(Timestamped, Base):
    """An unguessable token that reads one practitioner's, room's or clinic's iCalendar feed.

    Calendar apps cannot send headers, so the token travels in the URL; only its SHA-256
    digest is kept. Revoking it makes the URL a 404 at once.
    """

    __tablename__ = "calendar_feeds"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("feed"))
    organization_id: Mapped[str] = org_fk()
    owner_type: Mapped[str] = mapped_column(sa.String(20))
    owner_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    token_digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    if TYPE_CHECKING:  # not columns: set on a new feed for the one response that shows them
        secret: str
        token: str  # the deprecated name of `secret`
        url: str


class ExternalCalendar(Timestamped, Base):
    """A practitioner's other calendar (a feed URL or an uploaded file): its events block time.

    `content` is the last copy that parsed; a refresh that fails keeps it and records
    the error, so a feed that is down for a while never frees the practitioner's time.
    """

    __tablename__ = "external_calendars"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("xcal"))
    organization_id: Mapped[str] = org_fk()
    practitioner_id: Mapped[str] = mapped_column(sa.ForeignKey("practitioners.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    source_url: Mapped[str | None] = mapped_column(sa.String(2000), nullable=True)
    content: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expanded_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ExternalBusy(Base):
    """One occurrence of an external event, expanded (RRULE, EXDATE, overrides) ahead of time,
    so availability and booking read it with an index range like time off."""

    __tablename__ = "external_busy"
    __table_args__ = (sa.Index("ix_external_busy_practitioner_starts", "practitioner_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[str] = mapped_column(sa.ForeignKey("external_calendars.id"), index=True)
    practitioner_id: Mapped[str] = mapped_column(sa.ForeignKey("practitioners.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
