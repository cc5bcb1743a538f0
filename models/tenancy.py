"""Organizations (clinic chains) and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped, new_id, org_fk

SCOPES = ("read", "book", "admin")
# frontend: a booking frontend acting for patients, bound by every booking policy; staff: the front
# desk or a clinic system, which may override a policy with a reason and record clinical facts.
CHANNELS = ("frontend", "staff")
# secret: `nbk_...`, kept on a server; publishable: `pk_...`, shipped in a web page, so it may only do
# what a booking page does (api/publishable.py), from the origins it lists, and is always a frontend's.
KEY_KINDS = ("secret", "publishable")


class Organization(Timestamped, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("org"))
    name: Mapped[str] = mapped_column(sa.String(200))
    # The organization's own fields of its booking policy (booking/domain/policy.py); absent = default.
    booking_policy: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)
    # A new value with every change to what an availability search's set-up reads: database triggers
    # set it (migration 0011), never the application; availability_cache compares it.
    setup_version: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class ApiKey(Timestamped, Base):
    """A key is shown once; only its SHA-256 digest is stored.

    Keys are 256-bit random tokens, so a fast digest is enough: there is nothing
    to brute-force that a slow password hash would protect (unlike passwords).
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("key"))
    organization_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    channel: Mapped[str] = mapped_column(sa.String(20), default="frontend")
    kind: Mapped[str] = mapped_column(sa.String(20), default="secret", server_default="secret")
    # A publishable key's allowed browser origins (`https://book.example.com`); NULL on a secret key.
    origins: Mapped[list[str] | None] = mapped_column(sa.JSON, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)

    @property
    def publishable(self) -> bool:
        return self.kind == "publishable"

    if TYPE_CHECKING:  # not columns: set on a new key for the one response that shows it
        secret: str
        key: str  # the deprecated name of `secret`
