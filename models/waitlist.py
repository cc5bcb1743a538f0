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
