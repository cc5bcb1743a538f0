"""Practitioners, the clinics they work at, their weekly hours and time off."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, new_id, org_fk

practitioner_clinics = sa.Table(
    "practitioner_clinics",
    Base.metadata,
    sa.Column("practitioner_id", sa.ForeignKey("practitioners.id"), primary_key=True),
    sa.Column("clinic_id", sa.ForeignKey("clinics.id"), primary_key=True, index=True),
)

practitioner_treatment_types = sa.Table(
    "practitioner_treatment_types",
    Base.metadata,
    sa.Column("practitioner_id", sa.ForeignKey("practitioners.id"), primary_key=True),
    sa.Column("treatment_type_id", sa.ForeignKey("treatment_types.id"), primary_key=True, index=True),
)


class Practitioner(Timestamped, Base):
    __tablename__ = "practitioners"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("prac"))
    organization_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320), nullable=True)
    # False: a booking frontend may not book them (the front desk still may).
    bookable_online: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)

    clinics = relationship("Clinic", secondary=practitioner_clinics, order_by="Clinic.id")
    treatment_types = relationship("TreatmentType", secondary=practitioner_treatment_types, order_by="TreatmentType.id")
    working_hours: Mapped[list[WorkingHours]] = relationship(
        cascade="all, delete-orphan",
        order_by="(WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.clinic_id)",
    )

    @property
    def clinic_ids(self) -> list[str]:
        return [c.id for c in self.clinics]

    @property
    def clinic_zones(self) -> set[str]:
        """The time zone names of their clinics (booking.domain.weekly.practitioner_zone picks theirs)."""
        return {c.timezone for c in self.clinics}

    @property
    def treatment_type_ids(self) -> list[str]:
        return [t.id for t in self.treatment_types]


class WorkingHours(Base):
    """A weekly shift at one clinic, in that clinic's local wall-clock minutes."""

    __tablename__ = "working_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[str] = mapped_column(sa.ForeignKey("practitioners.id"), index=True)
    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)
    start_minute: Mapped[int] = mapped_column(sa.SmallInteger)
    end_minute: Mapped[int] = mapped_column(sa.SmallInteger)


class TimeOff(Timestamped, Base):
    __tablename__ = "time_off"
    __table_args__ = (sa.Index("ix_time_off_practitioner_range", "practitioner_id", "starts_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("off"))
    organization_id: Mapped[str] = org_fk()
    practitioner_id: Mapped[str] = mapped_column(sa.ForeignKey("practitioners.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
