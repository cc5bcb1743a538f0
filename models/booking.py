"""Appointments, holds, past sessions, and the claims that make overlaps impossible."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from booking.domain.claims import parse_claim_key

from .base import Base, Timestamped, new_id, org_fk

APPOINTMENT_STATUSES = ("booked", "checked_in", "completed", "cancelled", "no_show")
# Statuses whose appointment still counts as a session of the patient (interval, cap).
LIVE_STATUSES = ("booked", "checked_in", "completed")
HOLD_SOURCES = ("frontend", "follow_up", "course_plan", "waitlist")
# What GET /v1/holds/{id} says of a hold: live, lapsed, or its `outcome` once it has one.
HOLD_STATUSES = ("active", "expired", "booked", "released")


class _Slot:
    """The fields a slot, a hold and an appointment share."""

    clinic_id: Mapped[str] = mapped_column(sa.ForeignKey("clinics.id"))
    practitioner_id: Mapped[str] = mapped_column(sa.ForeignKey("practitioners.id"))
    room_id: Mapped[str] = mapped_column(sa.ForeignKey("rooms.id"))
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"))
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    course_id: Mapped[str | None] = mapped_column(sa.ForeignKey("courses.id"), nullable=True)
    area: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    starts_at: Mapped[datetime]
    procedure_starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # A staff key's override of the booking policy: which key, and why (booking/domain/policy.py).
    override_key_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    override_reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    # The course plan the hold was placed for, or the appointment booked from (migration 0015).
    # A plain id, no foreign key: SQLite adds a column in place only without one (as 0014).
    course_plan_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True, index=True)


class Appointment(_Slot, Timestamped, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        sa.Index("ix_appointments_org_starts", "organization_id", "starts_at"),
        sa.Index("ix_appointments_patient_starts", "patient_id", "starts_at"),
        sa.Index("ix_appointments_practitioner_starts", "practitioner_id", "starts_at"),
        sa.Index("ix_appointments_clinic_starts", "clinic_id", "starts_at"),
        # The scheduler's sweeps run across organizations: reminders by start, follow-ups by completion.
        sa.Index("ix_appointments_starts", "starts_at"),
        sa.Index("ix_appointments_completed", "completed_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("appt"))
    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="booked")
    rescheduled_from: Mapped[str | None] = mapped_column(sa.ForeignKey("appointments.id"), nullable=True)
    # The appointment that replaced this one (set on the old one by the reschedule that made it).
    # No foreign key: SQLite adds a column in place only without one (migration 0014), and the
    # new appointment's rescheduled_from, which has one, already guards the pair.
    rescheduled_to: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    # Who did what: the API key (its id and channel) that created, rescheduled and cancelled the
    # appointment (migration 0014). Plain ids, no foreign key: a revoked key stays named here.
    # NULL when no key acted (the scheduler, the demo seed) and on rows from before 0014.
    created_by_key_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    created_by_channel: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    rescheduled_by_key_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    rescheduled_by_channel: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    reschedule_reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)
    cancelled_by_key_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    cancelled_by_channel: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    hold_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    # The SHA-256 of the patient's manage link token (GET /v1/manage/{token}); the token is shown
    # once, in the answer and the appointment.created event of the booking that made it (0017).
    manage_token_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, unique=True)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    cancel_note: Mapped[str | None] = mapped_column(sa.String(1000), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)

    clinic = relationship("Clinic", lazy="joined", innerjoin=True)
    if TYPE_CHECKING:  # not a column: set on a new appointment for the answer and event that show it
        manage_token: str

    # Each as the API and the events show it: {"key_id", "channel"}, or None when nobody is recorded.
    @property
    def created_by(self) -> dict[str, str | None] | None:
        return _key(self.created_by_key_id, self.created_by_channel)

    @property
    def rescheduled_by(self) -> dict[str, str | None] | None:
        return _key(self.rescheduled_by_key_id, self.rescheduled_by_channel)

    @property
    def cancelled_by(self) -> dict[str, str | None] | None:
        return _key(self.cancelled_by_key_id, self.cancelled_by_channel)


def _key(key_id: str | None, channel: str | None) -> dict[str, str | None] | None:
    return {"key_id": key_id, "channel": channel} if key_id is not None else None


class Hold(_Slot, Timestamped, Base):
    __tablename__ = "holds"
    __table_args__ = (
        sa.Index("ix_holds_org_expires", "organization_id", "expires_at"),
        sa.Index("ix_holds_patient_starts", "patient_id", "starts_at"),
        sa.Index("ix_holds_expires", "expires_at"),  # the expiry sweep, across organizations
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("hold"))
    # NULL while a booking page's hold waits for the patient who registers as it is booked.
    patient_id: Mapped[str | None] = mapped_column(sa.ForeignKey("patients.id"), nullable=True)  # type: ignore[assignment]
    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    source: Mapped[str] = mapped_column(sa.String(20), default="frontend")
    expires_at: Mapped[datetime]
    # None while live; 'booked' once consumed by an appointment, 'released' when deleted,
    # 'expired' once the scheduler's sweep has released it after expires_at.
    outcome: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    appointment_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)
    extended_at: Mapped[datetime | None] = mapped_column(nullable=True)  # a hold is extended at most once
    # A booking page's hold (a publishable key) has no patient until it is booked, and is booked
    # with its hold token alone: the token's SHA-256 (migration 0017).
    hold_token_digest: Mapped[str | None] = mapped_column(sa.String(64), nullable=True, unique=True)
    if TYPE_CHECKING:  # not a column: set on a new booking page's hold for the answer that shows it
        hold_token: str

    clinic = relationship("Clinic", lazy="joined", innerjoin=True)

    # A hold is live while nobody has answered it and its time has not run out: only then does
    # it keep its slot and count as a session of the patient. Each works on a loaded hold and,
    # on the class, as a SQL condition (Hold.live(now)).
    @hybrid_method
    def live(self, now: datetime) -> bool:
        return self.outcome is None and self.expires_at > now

    @live.inplace.expression  # type: ignore[attr-defined]  # mypy reads the hybrid through its __get__ here
    @classmethod
    def _live_expression(cls, now: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(cls.outcome.is_(None), cls.expires_at > now)

    @hybrid_method
    def lapsed(self, now: datetime) -> bool:
        """Unanswered but past its time: the expiry sweep's to release."""
        return self.outcome is None and self.expires_at <= now

    @lapsed.inplace.expression  # type: ignore[attr-defined]  # as for live
    @classmethod
    def _lapsed_expression(cls, now: datetime) -> sa.ColumnElement[bool]:
        return sa.and_(cls.outcome.is_(None), cls.expires_at <= now)


# held: every session's hold is live until expires_at. confirmed: each booked, in one transaction.
# released: deleted (DELETE /v1/course-plans/{id}). expired: the holds ran out (the expiry sweep).
COURSE_PLAN_STATUSES = ("held", "confirmed", "released", "expired")


class CoursePlan(Timestamped, Base):
    """A course's sessions held together (issue 17): one hold per session (`Hold.course_plan_id`),
    one expiry, confirmed or released all at once."""

    __tablename__ = "course_plans"
    __table_args__ = (sa.Index("ix_course_plans_status_expires", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("cpl"))
    organization_id: Mapped[str] = org_fk()
    course_id: Mapped[str] = mapped_column(sa.ForeignKey("courses.id"), index=True)
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="held")
    expires_at: Mapped[datetime]
    first_number: Mapped[int]  # the course's number of its first session (sessions so far + 1)
    confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)

    holds = relationship(
        "Hold",
        primaryjoin="CoursePlan.id == foreign(Hold.course_plan_id)",
        order_by="Hold.starts_at",
        lazy="selectin",
        viewonly=True,
    )

    def status_at(self, now: datetime) -> str:
        """Its status as the API shows it: a held plan past its expiry is expired before the sweep says so."""
        return "expired" if self.status == "held" and self.expires_at <= now else self.status


class PastSession(Timestamped, Base):
    """A treatment done before the patient came here, or at another provider."""

    __tablename__ = "past_sessions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("past"))
    organization_id: Mapped[str] = org_fk()
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    course_id: Mapped[str | None] = mapped_column(sa.ForeignKey("courses.id"), nullable=True)
    performed_at: Mapped[datetime]
    provider: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    notes: Mapped[str | None] = mapped_column(sa.Text, nullable=True)


def pool_of(resource: str) -> str:
    """What a claim on `resource` counts against: the resource without its unit (the one place it is derived)."""
    return parse_claim_key(resource).resource


class Claim(Base):
    """One resource busy over [starts_at, ends_at) for an appointment or a live hold.

    The database has the last word on overlaps: on PostgreSQL the exclusion constraint
    below refuses two claims on one resource whose ranges intersect, so two concurrent
    bookings that both checked and found the slot free cannot both commit (the
    check-then-insert race). SQLite has no exclusion constraints: the trigger
    claims_no_overlap (migration 0002) refuses the same inserts, and write transactions
    start with BEGIN IMMEDIATE (models.db.writer), so the check and the insert of one
    booking are never interleaved with another's. A hold's claims carry its expiry: an
    expired claim counts for nothing, but neither guard knows that, so the next writer
    that needs the range deletes it first (booking/services/queries.py).

    `pool` is what the claim counts against: the resource without its unit (`numbing:cln_x`
    for `numbing:cln_x#2`), and the resource itself for a single one, so that one index on
    (pool, starts_at) finds every claim a search or a booking must see by an equality and a
    time range, pooled units included (migration 0010). It is set here (pool_of), from the
    resource, whenever the resource is; never by callers.
    """

    __tablename__ = "claims"
    __table_args__ = (
        # `resource = ...` (SQLite's claims_no_overlap trigger reads by it). The pattern ops of
        # migration 0003 served prefix matches on pooled units, which now go by `pool` instead.
        sa.Index(
            "ix_claims_resource_starts", "resource", "starts_at", postgresql_ops={"resource": "varchar_pattern_ops"}
        ),
        # Every read of claims by what they keep busy: `pool IN (...)` with the time bounds on starts_at.
        sa.Index("ix_claims_pool_starts", "pool", "starts_at"),
        postgresql.ExcludeConstraint(
            (sa.column("resource"), "="),
            (sa.func.tstzrange(sa.column("starts_at"), sa.column("ends_at"), "[)"), "&&"),
            using="gist",
            name="ex_claims_resource_during",
        ),
        sa.CheckConstraint("starts_at < ends_at", name="claim_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(sa.ForeignKey("organizations.id"))
    resource: Mapped[str] = mapped_column(sa.String(100))
    pool: Mapped[str] = mapped_column(sa.String(100))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    appointment_id: Mapped[str | None] = mapped_column(sa.ForeignKey("appointments.id"), nullable=True, index=True)
    hold_id: Mapped[str | None] = mapped_column(sa.ForeignKey("holds.id"), nullable=True, index=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)

    @validates("resource")
    def _set_pool(self, _key: str, resource: str) -> str:
        self.pool = pool_of(resource)
        return resource

    @classmethod
    def row(cls, **fields) -> dict:
        """The column values of a claim for a Core INSERT of many at once: `pool` set as the model sets it."""
        return {**fields, "pool": pool_of(fields["resource"])}

    @classmethod
    def live(cls, now: datetime):
        """SQL: the claim counts (an appointment's, or a hold's not yet past its expiry)."""
        return sa.or_(cls.expires_at.is_(None), cls.expires_at > now)

    @classmethod
    def lapsed(cls, now: datetime):
        """SQL: a hold's claim past its expiry, which counts for nothing."""
        return sa.and_(cls.expires_at.is_not(None), cls.expires_at <= now)
