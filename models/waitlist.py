"""The waitlist: patients waiting for a slot to free up, and the offers the scheduler makes them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, Timestamped, new_id, org_fk

# waiting: no live offer. offered: one live offer (a waitlist hold). fulfilled: an offer was
# booked. expired: the window passed unfulfilled. cancelled: the patient left the waitlist while it
# was open (DELETE; the entry is archived then, so the API never shows it).
WAITLIST_STATUSES = ("waiting", "offered", "fulfilled", "expired", "cancelled")
OPEN_WAITLIST_STATUSES = ("waiting", "offered")
# What became of one offer: None while its hold is unanswered; then booked, declined (the hold
# released), expired (the hold lapsed), withdrawn (the entry was cancelled with the offer live).
WAITLIST_OFFER_OUTCOMES = ("booked", "declined", "expired", "withdrawn")


class WaitlistEntry(Timestamped, Base):
    """A patient waiting for a slot of a treatment type inside a window, with preferences.

    Join order is (created_at, id): the scheduler offers a freed slot to the earliest-joined
    entry it fits (booking/services/waitlist.py).
    """

    __tablename__ = "waitlist_entries"
    __table_args__ = (sa.Index("ix_waitlist_entries_status_joined", "status", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("wait"))
    organization_id: Mapped[str] = org_fk()
    patient_id: Mapped[str] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    treatment_type_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_types.id"))
    # The clinics it would go to; empty: every clinic of the organization.
    clinic_ids: Mapped[list] = mapped_column(sa.JSON)
    practitioner_id: Mapped[str | None] = mapped_column(sa.ForeignKey("practitioners.id"), nullable=True)
    course_id: Mapped[str | None] = mapped_column(sa.ForeignKey("courses.id"), nullable=True)
    window_starts_at: Mapped[datetime]
    window_ends_at: Mapped[datetime]
    # ISO weekdays (1 Monday .. 7 Sunday) and a local time-of-day window [time_from, time_to) in
    # minutes after midnight, each in the zone of the slot's clinic; empty / null: any.
    weekdays: Mapped[list] = mapped_column(sa.JSON)
    time_from: Mapped[int | None] = mapped_column(nullable=True)
    time_to: Mapped[int | None] = mapped_column(nullable=True)
    # The zone its window is shown in: its first clinic's, or UTC for the whole chain.
    timezone: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(20), default="waiting")
    appointment_id: Mapped[str | None] = mapped_column(sa.ForeignKey("appointments.id"), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Set by DELETE: gone from the API like every deleted object (queries.of_organization leaves it out).
    archived_at: Mapped[datetime | None] = mapped_column(nullable=True)

    offers = relationship(
        "WaitlistOffer",
        order_by="(WaitlistOffer.created_at, WaitlistOffer.id)",
        lazy="selectin",
        back_populates="entry",
    )

    @property
    def latest_offer(self) -> WaitlistOffer | None:
        """The latest offer made to the entry (live or answered), or None."""
        return self.offers[-1] if self.offers else None

    @property
    def offers_made(self) -> int:
        return len(self.offers)


class WaitlistOffer(Base):
    """One slot offered to one entry: its hold (source `waitlist`) and what became of it.

    At most one live offer per entry: the partial unique index `uq_waitlist_offers_one_live`
    (outcome IS NULL) refuses a second one, whoever tries, in the same transaction that places
    the hold; the hold's claims keep the slot from being offered to anyone else meanwhile.
    """

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        sa.Index(
            "uq_waitlist_offers_one_live",
            "entry_id",
            unique=True,
            postgresql_where=sa.text("outcome IS NULL"),
            sqlite_where=sa.text("outcome IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True, default=lambda: new_id("offer"))
    organization_id: Mapped[str] = org_fk()
    entry_id: Mapped[str] = mapped_column(sa.ForeignKey("waitlist_entries.id"), index=True)
    hold_id: Mapped[str] = mapped_column(sa.ForeignKey("holds.id"), unique=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)

    entry = relationship("WaitlistEntry", back_populates="offers")
    hold = relationship("Hold", lazy="joined", innerjoin=True)


class CapacityChange(Base):
    """One write that may have freed capacity or loosened a rule of an organization: appended by the
    triggers of migration 0019 in the writing transaction itself (a cancel, a reschedule away, a
    released hold, time off or external busy time removed or moved, a patient's record changed).

    Append-only, so no two writers ever wait on one row; the sweep's signal is how many there have
    been (`WaitlistSweep.folded` + the rows left), which a committed write always changes, whatever
    order transactions commit in (a highest id would not: a lower one may commit later).
    """

    __tablename__ = "capacity_changes"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    organization_id: Mapped[str] = mapped_column(sa.String(40), index=True)  # no foreign key: triggers write it


class WaitlistSweep(Base):
    """The waitlist sweep's state of one organization, written by the lease-holding scheduler only.

    `folded`: capacity_changes rows counted and deleted (the count stays whole). `cursor_*`: the
    (joined, id) of the last entry a sweep looked at when the organization's budget ran out; the
    next sweep goes on after it (None: a pass starts at the earliest-joined).
    """

    __tablename__ = "waitlist_sweeps"

    organization_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    folded: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    cursor_joined_at: Mapped[datetime | None] = mapped_column(nullable=True)
    cursor_entry_id: Mapped[str | None] = mapped_column(sa.String(40), nullable=True)


class WaitlistLook(Base):
    """The last look at an entry that found nothing it fits: under which signal (`looked_under`:
    the organization's capacity changes, setup_version and booking policy), and when the clock alone
    could change the answer (`recheck_at`: the earliest expiry of a hold live then, or the booking
    horizon moving over the entry's window). The sweep skips the entry while both still hold; an
    offer deletes the row. Scheduler state, apart from the entry's row, so the entry's version
    (its ETag) and updated_at never move with a look."""

    __tablename__ = "waitlist_looks"

    entry_id: Mapped[str] = mapped_column(sa.ForeignKey("waitlist_entries.id"), primary_key=True)
    looked_under: Mapped[str] = mapped_column(sa.String(120))
    recheck_at: Mapped[datetime | None] = mapped_column(nullable=True)
