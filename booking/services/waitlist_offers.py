"""What answering a waitlist hold does to its offer and entry (called by the booking services).

Kept apart from booking.services.waitlist, which places offers through the booking services:
these are the booking services' side, so neither module imports the other in a circle. Each is
called with the hold's row already locked (the hold, then the entry: the order every path takes).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.services import events
from models import Hold, WaitlistEntry, WaitlistOffer


def live_offer_of(db: Session, hold: Hold) -> WaitlistOffer | None:
    return db.scalar(sa.select(WaitlistOffer).where(WaitlistOffer.hold_id == hold.id, WaitlistOffer.outcome.is_(None)))


def locked_entry(db: Session, entry_id: str) -> WaitlistEntry:
    return db.scalars(
        sa.select(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id)
        .with_for_update(of=WaitlistEntry)
        .execution_options(populate_existing=True)
    ).one()


def answered(db: Session, hold: Hold, outcome: str, now: datetime, appointment_id: str | None = None) -> None:
    """The hold of a waitlist offer was booked, released (declined) or lapsed (expired).

    Booked fulfils the entry (`waitlist.fulfilled`); declined or expired puts it back to waiting,
    and the next sweep offers the slot to the next entry it fits (never again to this one)."""
    offer = live_offer_of(db, hold)
    if offer is None:
        return
    offer.outcome, offer.answered_at = outcome, now
    entry = locked_entry(db, offer.entry_id)
    if entry.status != "offered":
        return
    if outcome == "booked":
        entry.status, entry.appointment_id, entry.ended_at = "fulfilled", appointment_id, now
        db.flush()
        events.add(
            db,
            entry.organization_id,
            "waitlist.fulfilled",
            f"waitlist.fulfilled:{entry.id}",
            entry.id,
            {"waitlist_entry": events.waitlist_payload(entry), "hold": events.hold_payload(hold)},
        )
    else:
        entry.status = "waiting"
    db.flush()
