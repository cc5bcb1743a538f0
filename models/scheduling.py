"""What the scheduler process writes: follow-up proposals, the outbox of domain
events, and the lease that lets only one scheduler act at a time."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, new_id, org_fk, utcnow

# proposed: a follow-up hold is live. no_slot: nothing free in the window (or the patient's
# rules ruled it out), the clinic should act. not_needed: the patient already has the next
# session. booked / declined / expired: what became of the hold.
FOLLOW_UP_STATUSES = ("proposed", "no_slot", "not_needed", "booked", "declined", "expired")


class FollowUp(Timestamped, Base):
    """The scheduler's proposal for the session after a completed one.

    One per completed session: the unique `appointment_id` is what makes the sweep
    idempotent, even with two schedulers or a crash between two runs.
    """

    __tablename__ = "follow_ups"
    __table_args__ = (
        sa.Index("ix_follow_ups_org_window", "organization_id", "window_starts_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("fup"))
    organization_id: Mapped[str] = org_fk()
    appointment_id: Mapped[str] = mapped_column(sa.ForeignKey("appointments.id"), unique=True)
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"))
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    course_id: Mapped[str | None] = mapped_column(sa.ForeignKey("courses.id"), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    window_starts_at: Mapped[datetime]
    window_ends_at: Mapped[datetime]
    hold_id: Mapped[str | None] = mapped_column(sa.ForeignKey("holds.id"), nullable=True, index=True)
    booked_appointment_id: Mapped[str | None] = mapped_column(sa.ForeignKey("appointments.id"), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    reason_detail: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)

    hold = relationship("Hold", lazy="joined")
    clinic = relationship("Clinic", lazy="joined", innerjoin=True)


class OutboxEvent(Base):
    """A domain event, written in the same transaction as the change that caused it.

    `dedupe_key` names the occurrence (`appointment.created:<id>`, `reminder:<id>:48h`): it is
    unique, so an event can never be recorded twice, whoever tries. Delivery (webhooks)
    reads the outbox in id order, which is the order of creation.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.Index("ix_outbox_events_org_id", "organization_id", "id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("evt"))
    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    type: Mapped[str] = mapped_column(sa.String(60))
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    subject_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerLease(Base):
    """Who may run the scheduler's jobs, until when. A crashed holder's lease simply runs out."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(100))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]
