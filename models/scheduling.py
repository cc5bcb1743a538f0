"""What the scheduler process writes: follow-up proposals, the outbox of domain
events, and the lease that lets only one scheduler act at a time."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, new_id, now, org_fk
from .sealed import Sealed

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
    __table_args__ = (sa.Index("ix_follow_ups_org_window", "organization_id", "window_starts_at"),)

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
    __table_args__ = (sa.Index("ix_outbox_events_org_id", "organization_id", "id"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("evt"))
    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    type: Mapped[str] = mapped_column(sa.String(60))
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    subject_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=now)
    # Set once the webhook fan-out has made this event's deliveries. A flag, not a cursor over
    # ids: an event whose transaction commits late (its id older than one already seen) is
    # still found.
    dispatched_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)


class SchedulerLease(Base):
    """Who may run the scheduler's jobs, until when. A crashed holder's lease simply runs out."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(100))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]


WEBHOOK_STATUSES = ("active", "disabled")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


class WebhookSubscription(Timestamped, Base):
    """A URL that receives the organization's events of the chosen types, signed with `secret`.

    Signing needs the secret itself (Standard Webhooks, HMAC-SHA256), so it is kept sealed
    (models/sealed.py), never in clear; so is the secret it replaced, which also signs every
    delivery until `previous_secret_expires_at` (a rotation's grace period).
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("whk"))
    organization_id: Mapped[str] = org_fk()
    url: Mapped[str] = mapped_column(sa.String(2000))
    event_types: Mapped[list] = mapped_column(sa.JSON)
    description: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    secret: Mapped[str] = mapped_column(Sealed())
    previous_secret: Mapped[str | None] = mapped_column(Sealed(), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The run of failed attempts since the last delivered one: a long enough run disables it.
    failing_since: Mapped[datetime | None] = mapped_column(nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookDelivery(Timestamped, Base):
    """One event to one subscription: retried with backoff until a 2xx or about three days."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("dlv"))
    organization_id: Mapped[str] = org_fk()
    subscription_id: Mapped[str] = mapped_column(sa.ForeignKey("webhook_subscriptions.id"), index=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("outbox_events.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Asked again by the API (redeliver): its retries are counted from here, not from created_at.
    redelivered_at: Mapped[datetime | None] = mapped_column(nullable=True)

    event = relationship("OutboxEvent", lazy="joined", innerjoin=True)
    attempt_log = relationship("WebhookAttempt", order_by="WebhookAttempt.id", lazy="selectin")


class WebhookAttempt(Base):
    """The delivery log: every request made, what came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(sa.ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(nullable=True)
    error: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    duration_ms: Mapped[int]


class IdempotencyKey(Base):
    """A POST's Idempotency-Key: the request's fingerprint and, once done, its response.

    The primary key (organization, key) is the lock: a second request with the key
    finds the row (in flight or done) instead of doing the work again.
    """

    __tablename__ = "idempotency_keys"

    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    method: Mapped[str] = mapped_column(sa.String(10))
    path: Mapped[str] = mapped_column(sa.String(2000))
    status: Mapped[str] = mapped_column(sa.String(20), default="in_flight")  # in_flight | done
    response_status: Mapped[int | None] = mapped_column(nullable=True)
    response_body: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    response_headers: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
