"""Clinics, their weekly opening hours, closures and rooms."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, new_id, org_fk


class Clinic(Timestamped, Base):
    __tablename__ = "clinics"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("cln"))
    organization_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    timezone: Mapped[str] = mapped_column(sa.String(64))
    address: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    # 0: patients numb in the treatment room; N: a numbing area with N chairs.
    numbing_area_capacity: Mapped[int] = mapped_column(default=0, server_default="0")
    # None: devices are not counted; N: at most N needlings at once.
    device_count: Mapped[int | None] = mapped_column(nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    booking_policy: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)

    opening_hours: Mapped[list[OpeningHours]] = relationship(
        cascade="all, delete-orphan", order_by="(OpeningHours.weekday, OpeningHours.start_minute)"
    )
    closures: Mapped[list[Closure]] = relationship(cascade="all, delete-orphan", order_by="Closure.start_date")


class OpeningHours(Base):
    """One opening interval of a weekday, in the clinic's local wall-clock minutes."""

    __tablename__ = "clinic_opening_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    start_minute: Mapped[int] = mapped_column(sa.SmallInteger)
    end_minute: Mapped[int] = mapped_column(sa.SmallInteger)


class Closure(Base):
    """Whole local days (inclusive) on which the clinic is closed."""

    __tablename__ = "clinic_closures"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date] = mapped_column(sa.Date)
    reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)


class Room(Timestamped, Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("room"))
    organization_id: Mapped[str] = org_fk()
    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    capabilities: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
