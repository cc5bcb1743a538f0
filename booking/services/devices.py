"""Counted devices (pens, rollers) per clinic: changing the count re-claims them for every live booking.

A booking claims a device unit (`device:<clinic>#n`) only while its clinic counts devices.
Switching the count on, or changing it, therefore gives every live booking at the clinic its
unit in the same transaction, so the claims the database guards (booking/services/appointments.py)
stay the whole truth; a count the bookings already exceed is refused, naming them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from booking.domain import rules
from booking.domain.claims import claim_key, parse_claim_key
from booking.domain.errors import BookingsChanging, DeviceCountTooLow
from booking.domain.intervals import Interval
from booking.domain.timing import Instants, Timing, occupancy
from booking.services.queries import CLAIM_REACH
from models import Appointment, Claim, Clinic, Hold, TreatmentType


def set_device_count(db: Session, clinic: Clinic, count: int | None, now: datetime) -> None:
    """Re-claim devices for `count` (None: not counted). The caller holds the clinic's row
    locked, and a booking reads the count under a share of that lock, so none slips past."""
    bookings = _live_bookings(db, clinic, now)
    uses = {}
    for booking in bookings:
        for start, end in _device_needs(db, clinic, booking, count):
            if end > now:  # a needling under way keeps its unit from now on
                uses[booking.id] = (booking, max(start, now), end)
    units, clashes = rules.assign_units([(k, s, e) for k, (_, s, e) in uses.items()], count or 0)
    if count is not None and clashes:
        raise _too_low(clinic, count, clashes, uses)
    # No claim lasts longer than CLAIM_REACH: the bound on starts_at keeps this a range of ix_claims_pool_starts.
    db.execute(
        sa.delete(Claim).where(
            Claim.pool.in_([claim_key("device", clinic.id)]),
            Claim.starts_at >= now - CLAIM_REACH,
            Claim.ends_at > now,
        )
    )
    for key, unit in units.items():
        booking, start, end = uses[key]
        is_hold = isinstance(booking, Hold)
        db.add(
            Claim(
                organization_id=clinic.organization_id,
                resource=claim_key("device", clinic.id, unit),
                starts_at=start,
                ends_at=end,
                appointment_id=None if is_hold else booking.id,
                hold_id=booking.id if is_hold else None,
                expires_at=booking.expires_at if is_hold else None,
            )
        )
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:  # cannot happen while the bookings are locked; never a 500
        raise _changing() from exc


def _live_bookings(db: Session, clinic: Clinic, now: datetime) -> list:
    """The clinic's appointments that hold claims and its live holds, not yet over, locked.

    Locked so that none is cancelled or moved between reading it and claiming for it (its
    claims would be left behind). NOWAIT: a booking from a hold or a reschedule locks its row
    before it reads the clinic, which this transaction holds; waiting would deadlock.
    """
    session_types = sa.select(TreatmentType.id).where(TreatmentType.kind == rules.SESSION_KIND)
    queries = [
        sa.select(Appointment)
        .where(
            Appointment.clinic_id == clinic.id,
            Appointment.status != "cancelled",
            Appointment.ends_at > now,
            Appointment.treatment_type_id.in_(session_types),
        )
        .order_by(Appointment.id)
        .with_for_update(read=True, nowait=True, of=Appointment),
        sa.select(Hold)
        .where(
            Hold.clinic_id == clinic.id,
            Hold.live(now),
            Hold.ends_at > now,
            Hold.treatment_type_id.in_(session_types),
        )
        .order_by(Hold.id)
        .with_for_update(read=True, nowait=True, of=Hold),
    ]
    try:
        with db.begin_nested():
            return [row for query in queries for row in db.scalars(query)]
    except OperationalError as exc:
        if "55P03" in (getattr(exc.orig, "sqlstate", None), getattr(exc.orig, "pgcode", None)):  # lock_not_available
            raise _changing() from exc
        raise


def _device_needs(db: Session, clinic: Clinic, booking: Appointment | Hold, count: int | None) -> list[Interval]:
    """The device a booking claims with `count` devices counted (none when None), as booking would."""
    at = Instants(booking.starts_at, booking.procedure_starts_at, booking.ends_at)
    needs = occupancy(
        Timing.of(db.get(TreatmentType, booking.treatment_type_id)),
        at,
        clinic_id=clinic.id,
        practitioner_id=booking.practitioner_id,
        room_id=booking.room_id,
        patient_id=booking.patient_id,
        devices=count,
    )
    # The needling never outlasts the booking, even if the type's procedure was lengthened since.
    return [
        (n.starts_at, min(n.ends_at, booking.ends_at)) for n in needs if parse_claim_key(n.resource).kind == "device"
    ]


def _too_low(clinic: Clinic, count: int, clashes: list[list[str]], uses: dict) -> DeviceCountTooLow:
    involved = sorted({k for clash in clashes for k in clash}, key=lambda k: (uses[k][1], k))
    spans = [(k, s, e) for k, (_, s, e) in uses.items()]
    needed = max(rules.assign_units(spans, len(spans))[0].values())  # the most needlings at once
    conflicts = []
    for key in involved:
        booking, start, end = uses[key]
        conflicts.append(
            {
                ("hold_id" if isinstance(booking, Hold) else "appointment_id"): booking.id,
                "starts_at": start,
                "ends_at": end,
            }
        )
    return DeviceCountTooLow(
        f"Up to {needed} booked needlings overlap at this clinic, more than {count} devices; "
        "move or cancel some first.",
        devices_needed=needed,
        conflicts=conflicts,
    ).localized(ZoneInfo(clinic.timezone))


def _changing() -> BookingsChanging:
    return BookingsChanging("A booking at this clinic is being changed right now; retry.")
