"""Treatment types: consultation, microneedling and review, with their timings."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, Timestamped, new_id, org_fk


class TreatmentType(Timestamped, Base):
    __tablename__ = "treatment_types"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("tt"))
    organization_id: Mapped[str] = org_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    numbing_minutes: Mapped[int]
    prep_minutes: Mapped[int]
    procedure_minutes: Mapped[int]
    aftercare_minutes: Mapped[int]
    turnover_minutes: Mapped[int]
    min_interval_days: Mapped[int | None] = mapped_column(nullable=True)
    recommended_interval_days: Mapped[int | None] = mapped_column(nullable=True)
    max_sessions: Mapped[int | None] = mapped_column(nullable=True)
    consultation_valid_days: Mapped[int | None] = mapped_column(nullable=True)
    allowed_areas: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    required_capability: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)
    booking_policy: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)
