"""The waitlist (issue 17): patients waiting for a slot, and the scheduler's offers of freed ones.

Rules: "Waitlist" in docs/rules.md. The sweep (`offer`, run by the scheduler for each open entry
in join order) searches the entry's window through the availability search, under the booking
policy of a frontend and with every clinical rule of the patient, keeps the slots its preferences
allow and that it was not offered before, and holds the earliest through `place_hold`, the path
every booking takes, with `source: waitlist`. Capacity freed for any reason (a cancellation, a
reschedule away, a released or lapsed hold, time off removed, hours or rooms added) is simply a
slot the next search finds. The earliest-joined entry is searched first, so it gets first pick;
the hold's claims keep the slot from every other entry until it is answered. The hold, the offer
and the entry's status are written in one transaction: a scheduler killed half-way leaves
nothing, and the unique index on live offers refuses a second one for the entry.

What a sweep costs (the noisy neighbour): an entry whose look found nothing is looked at again only
once its organization's `signal` has moved (a write that may free capacity or loosen a rule,
migration 0019; the set-up's setup_version; the organization's booking policy) or the clock alone
may have changed the answer (`WaitlistLook.recheck_at`: a hold live at the look lapsing, the booking
horizon moving over the entry's window). And each organization has a budget of searches per sweep,
spent in join order from where its last sweep stopped (schedulers/jobs.py `offer_waitlist`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.availability import Slot
from booking.domain.errors import DomainError, InvalidInput
from booking.domain.policy import FRONTEND, Actor, Policy
from booking.services import availability_search, events, patients, policies
from booking.services.appointments import SlotRequest, expire_hold, get_hold, place_hold, release_hold
from booking.services.availability_cache import ClinicFacts, policy_text
from booking.services.changes import check_version, load
from booking.services.queries import one_of_organization
from booking.services.waitlist_offers import locked_entry
from models import (
    OPEN_WAITLIST_STATUSES,
    CapacityChange,
    Clinic,
    Hold,
    Organization,
    Patient,
    Practitioner,
    TreatmentType,
    WaitlistEntry,
    WaitlistLook,
    WaitlistOffer,
    WaitlistSweep,
)

# How far ahead an entry's window may reach from when it is made.
LONGEST_WINDOW = timedelta(days=366)
# A slot taken between the search and the hold (a concurrent booking): try the next one.
ATTEMPTS = 3
_CHUNK = timedelta(days=31)  # the availability search's longest window


@dataclass(frozen=True)
class WaitlistSettings:
    offer_for: timedelta = timedelta(hours=2)  # WAITLIST_OFFER_MINUTES: how long the patient has to answer
    shortest_offer: timedelta = timedelta(
        minutes=5
    )  # WAITLIST_SHORTEST_OFFER_MINUTES: a slot too near to leave this long is not offered
    batch: int = 200  # entries read per page, in join order
    # WAITLIST_SEARCHES_PER_ORGANIZATION: availability searches one organization may use per sweep
    # (checked before each entry, so one entry's look may go past it by its own searches).
    searches_per_organization: int = 60
    # WAITLIST_HORIZON_RECHECK_MINUTES: an entry whose window reaches past the booking horizon is
    # looked at again once the horizon has moved this much further (new starts enter it continuously).
    horizon_recheck: timedelta = timedelta(hours=1)
    policy_defaults: Policy = field(default_factory=Policy)  # the deployment's defaults of the organization's policy
    search: availability_search.Settings = field(default_factory=availability_search.Settings)


@dataclass
class Look:
    """One entry's look in a sweep: the organization's signal read before it, and what it cost."""

    signal: str
    searches: int = 0


# capacity_changes rows an organization may gather before a sweep folds them into its count.
FOLD_AT = 1000


@dataclass(frozen=True)
class EntryRequest:
    patient_id: str
    treatment_type_id: str
    end: datetime
    start: datetime | None = None
    clinic_ids: tuple[str, ...] = ()
    practitioner_id: str | None = None
    course_id: str | None = None
    weekdays: tuple[int, ...] = ()
    time_from: int | None = None
    time_to: int | None = None


# --- the API's side: join, read, leave ---------------------------------------------------------


def join(db: Session, org: str, req: EntryRequest) -> WaitlistEntry:
    """A new entry, every reference and the window checked first (a 422 writes nothing)."""
    now = clock.now()
    start = max(req.start or now, now)
    problems: dict[str, list[str]] = {}
    if req.end <= start:
        problems["end"] = ["Must be after start and in the future."]
    elif req.end - start > LONGEST_WINDOW:
        problems["end"] = [f"The window spans at most {LONGEST_WINDOW.days} days from now."]
    if req.time_from is not None and req.time_to is not None and req.time_to <= req.time_from:
        problems["time_to"] = ["Must be after time_from."]
    for field_name, found in _references(db, org, req).items():
        problems.setdefault(field_name, []).extend(found)
    if problems:
        raise InvalidInput(problems)
    clinic_ids = tuple(dict.fromkeys(req.clinic_ids))
    zone = db.get_one(Clinic, clinic_ids[0]).timezone if clinic_ids else "UTC"
    entry = WaitlistEntry(
        organization_id=org,
        patient_id=req.patient_id,
        treatment_type_id=req.treatment_type_id,
        clinic_ids=list(clinic_ids),
        practitioner_id=req.practitioner_id,
        course_id=req.course_id,
        window_starts_at=start,
        window_ends_at=req.end,
        weekdays=sorted(set(req.weekdays)),
        time_from=req.time_from,
        time_to=req.time_to,
        timezone=zone,
        status="waiting",
        created_at=now,
    )
    db.add(entry)
    db.flush()
    return entry


def _references(db: Session, org: str, req: EntryRequest) -> dict[str, list[str]]:
    """What is wrong with the ids the entry names, by field (empty: nothing)."""
    problems: dict[str, list[str]] = {}

    def load(model, object_id, field_name):
        try:
            return one_of_organization(db, org, model, object_id, field_name)
        except InvalidInput as unknown:
            for name, messages in unknown.errors.items():
                problems.setdefault(name, []).extend(messages)
            return None

    patient = load(Patient, req.patient_id, "patient_id")
    treatment_type = load(TreatmentType, req.treatment_type_id, "treatment_type_id")
    for clinic_id in dict.fromkeys(req.clinic_ids):
        load(Clinic, clinic_id, "clinic_ids")
    practitioner = load(Practitioner, req.practitioner_id, "practitioner_id") if req.practitioner_id else None
    if practitioner is not None and treatment_type is not None:
        if treatment_type.id not in {t.id for t in practitioner.treatment_types}:
            problems.setdefault("practitioner_id", []).append("Not qualified for this treatment type.")
        works_at = {c.id for c in practitioner.clinics}
        if req.clinic_ids and not works_at & set(req.clinic_ids):
            problems.setdefault("practitioner_id", []).append("Works at none of the clinics named.")
    if req.course_id and patient is not None and treatment_type is not None:
        try:
            course = patients.course_of(db, req.course_id, patient.id, treatment_type)
            if course.status != "active":
                problems.setdefault("course_id", []).append(f"The course is {course.status}.")
        except InvalidInput as wrong:
            for name, messages in wrong.errors.items():
                problems.setdefault(name, []).extend(messages)
    return problems


def get_entry(db: Session, org: str, entry_id: str, *, lock: bool = False) -> WaitlistEntry:
    """The organization's entry, not deleted; NotFound otherwise."""
    return load(db, org, WaitlistEntry, entry_id, what="waitlist entry", lock=lock)


def leave(db: Session, org: str, entry_id: str, expected_version: int | None = None) -> None:
    """DELETE: the entry is gone from the API, as every deleted object is. An open one is
    cancelled first and a live offer's hold released at once (`withdrawn`), so the slot goes to
    the next entry it fits."""
    now = clock.now()
    entry = get_entry(db, org, entry_id)
    offer = _live_offer(db, entry.id)
    hold = get_hold(db, org, offer.hold_id, lock=True) if offer is not None else None  # the hold, then the entry
    entry = get_entry(db, org, entry_id, lock=True)
    check_version(entry, expected_version)
    if offer is not None and hold is not None and entry.status in OPEN_WAITLIST_STATUSES:
        offer.outcome, offer.answered_at = "withdrawn", now
        release_hold(db, org, hold.id)
    if entry.status in OPEN_WAITLIST_STATUSES:
        entry.status, entry.ended_at = "cancelled", now
    entry.archived_at = now
    db.flush()


def effective_status(entry: WaitlistEntry, now: datetime | None = None) -> str:
    """An offer whose hold lapsed is over, even before the sweep records it: the entry is waiting."""
    if entry.status == "offered":
        offer = entry.latest_offer
        if offer is None or not offer.hold.live(now or clock.now()):
            return "waiting"
    return entry.status


def status_is(status: str, now: datetime):
    """The clause for entries whose effective status is `status`."""
    live = (
        sa.select(WaitlistOffer.id)
        .join(Hold, Hold.id == WaitlistOffer.hold_id)
        .where(WaitlistOffer.entry_id == WaitlistEntry.id, WaitlistOffer.outcome.is_(None), Hold.live(now))
    )
    if status == "offered":
        return sa.and_(WaitlistEntry.status == "offered", live.exists())
    if status == "waiting":
        return sa.or_(WaitlistEntry.status == "waiting", sa.and_(WaitlistEntry.status == "offered", ~live.exists()))
    return WaitlistEntry.status == status


def _live_offer(db: Session, entry_id: str) -> WaitlistOffer | None:
    return db.scalar(
        sa.select(WaitlistOffer).where(WaitlistOffer.entry_id == entry_id, WaitlistOffer.outcome.is_(None))
    )


# --- the scheduler's side: end the passed, offer to the open ----------------------------------


def passed(db: Session, now: datetime, limit: int = 200) -> list[str]:
    """Open entries whose window has ended, oldest first."""
    return list(
        db.scalars(
            sa.select(WaitlistEntry.id)
            .where(WaitlistEntry.status.in_(OPEN_WAITLIST_STATUSES), WaitlistEntry.window_ends_at <= now)
            .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
            .limit(limit)
        )
    )


def end(db: Session, entry_id: str, now: datetime) -> bool:
    """End one entry whose window has passed (`waitlist.expired`); a live offer is left to be answered."""
    entry = db.get(WaitlistEntry, entry_id)
    if entry is None:
        return False
    offer = _live_offer(db, entry.id)
    if offer is not None:
        hold = _locked_hold(db, offer.hold_id)
        if hold.live(now):
            return False  # booked or declined first; the next sweep ends it
        expire_hold(db, hold, now)
    entry = locked_entry(db, entry_id)
    if entry.status not in OPEN_WAITLIST_STATUSES or entry.window_ends_at > now:
        return False
    entry.status, entry.ended_at = "expired", now
    db.flush()
    events.add(
        db,
        entry.organization_id,
        "waitlist.expired",
        f"waitlist.expired:{entry.id}",
        entry.id,
        {"waitlist_entry": events.waitlist_payload(entry)},
    )
    return True


def organizations_waiting(db: Session, now: datetime) -> list[str]:
    """The organizations with an open entry whose window has not passed."""
    return list(
        db.scalars(
            sa.select(WaitlistEntry.organization_id)
            .where(WaitlistEntry.status.in_(OPEN_WAITLIST_STATUSES), WaitlistEntry.window_ends_at > now)
            .group_by(WaitlistEntry.organization_id)
            .order_by(WaitlistEntry.organization_id)
        )
    )


def signal(db: Session, org: str) -> str:
    """What the organization's capacity picture is looked at under: the writes that may have freed
    something (counted: migration 0019), its setup_version, its booking policy. Read before a look's
    search, so a write committed after it changes the signal the next sweep reads."""
    changes = (
        sa.select(sa.func.count()).select_from(CapacityChange).where(CapacityChange.organization_id == org)
    ).scalar_subquery()
    folded = sa.select(WaitlistSweep.folded).where(WaitlistSweep.organization_id == org).scalar_subquery()
    setup, policy, count = db.execute(
        sa.select(Organization.setup_version, policy_text(), sa.func.coalesce(folded, 0) + changes).where(
            Organization.id == org
        )
    ).one()
    digest = hashlib.sha256((policy or "").encode()).hexdigest()[:16]
    return f"{count}.{setup}.{digest}"


def begin_sweep(db: Session, org: str) -> tuple[str, tuple[datetime, str] | None]:
    """The organization's signal and cursor for this sweep, its change rows folded first once there are many."""
    state = _sweep_state(db, org)
    rows = db.scalar(
        sa.select(sa.func.count()).select_from(CapacityChange).where(CapacityChange.organization_id == org)
    )
    if (rows or 0) >= FOLD_AT:
        _fold(db, state)
    cursor = None
    if state.cursor_joined_at is not None and state.cursor_entry_id is not None:
        cursor = (state.cursor_joined_at, state.cursor_entry_id)
    return signal(db, org), cursor


def fold_crowded(db: Session) -> int:
    """Fold the change rows of every organization with many, waitlist or not (the triggers append
    for all of them): the table stays small. Returns how many organizations were folded."""
    crowded = db.scalars(
        sa.select(CapacityChange.organization_id)
        .group_by(CapacityChange.organization_id)
        .having(sa.func.count() >= FOLD_AT)
    ).all()
    for org in crowded:
        _fold(db, _sweep_state(db, org))
    return len(crowded)


def _sweep_state(db: Session, org: str) -> WaitlistSweep:
    state = db.scalars(
        sa.select(WaitlistSweep).where(WaitlistSweep.organization_id == org).with_for_update()
    ).one_or_none()
    if state is None:
        state = WaitlistSweep(organization_id=org, folded=0)
        db.add(state)
        db.flush()
    return state


def _fold(db: Session, state: WaitlistSweep) -> None:
    """The rows deleted are exactly those added to `folded`, in one transaction, so the count any
    statement reads (folded + rows) never goes back and never stands still over a new row."""
    gone = db.execute(
        sa.delete(CapacityChange)
        .where(CapacityChange.organization_id == state.organization_id)
        .returning(CapacityChange.id)
        .execution_options(synchronize_session=False)
    ).all()
    state.folded += len(gone)
    db.flush()


def keep_cursor(db: Session, org: str, cursor: tuple[datetime, str] | None) -> None:
    """Where the organization's next sweep goes on (None: at its earliest-joined entry)."""
    state = db.get(WaitlistSweep, org) or WaitlistSweep(organization_id=org, folded=0)
    state.cursor_joined_at, state.cursor_entry_id = cursor if cursor is not None else (None, None)
    db.add(state)
    db.flush()


def due(
    db: Session,
    org: str,
    now: datetime,
    under: str,
    limit: int = 200,
    after: tuple[datetime, str] | None = None,
    through: tuple[datetime, str] | None = None,
) -> list[tuple[datetime, str]]:
    """(joined, id) of the organization's open entries in join order, after `after` and up to
    `through`, that could take an offer now and whose answer may have changed since their last
    look: waiting, or offered with the offer's hold run out (the sweep records it and offers the
    next); never looked at, looked at under another signal than `under`, or due a recheck."""
    lapsed = (
        sa.select(WaitlistOffer.id)
        .join(Hold, Hold.id == WaitlistOffer.hold_id)
        .where(WaitlistOffer.entry_id == WaitlistEntry.id, WaitlistOffer.outcome.is_(None), ~Hold.live(now))
    )
    query = (
        sa.select(WaitlistEntry.created_at, WaitlistEntry.id)
        .outerjoin(WaitlistLook, WaitlistLook.entry_id == WaitlistEntry.id)
        .where(
            WaitlistEntry.organization_id == org,
            WaitlistEntry.window_ends_at > now,
            sa.or_(WaitlistEntry.status == "waiting", sa.and_(WaitlistEntry.status == "offered", lapsed.exists())),
            sa.or_(WaitlistLook.entry_id.is_(None), WaitlistLook.looked_under != under, WaitlistLook.recheck_at <= now),
        )
    )
    joined = sa.tuple_(WaitlistEntry.created_at, WaitlistEntry.id)
    if after is not None:
        query = query.where(joined > sa.tuple_(*after))
    if through is not None:
        query = query.where(joined <= sa.tuple_(*through))
    rows = db.execute(query.order_by(WaitlistEntry.created_at, WaitlistEntry.id).limit(limit))
    return [(joined, entry_id) for joined, entry_id in rows]


def offer(
    db: Session, entry_id: str, settings: WaitlistSettings = WaitlistSettings(), look: Look | None = None
) -> WaitlistOffer | None:
    """Offer the entry the earliest free slot that fits it, once (the caller commits). With a
    `look`, its searches are counted there, and a look that finds nothing is recorded under its
    signal (WaitlistLook), so the sweep skips the entry until something may have changed."""
    now = clock.now()
    entry = db.get(WaitlistEntry, entry_id)
    if entry is None:
        return None
    live = _live_offer(db, entry.id)
    if live is not None:  # lock the hold before the entry, as booking from it does
        hold = _locked_hold(db, live.hold_id)
        if hold.live(now):
            return None
        expire_hold(db, hold, now)  # ran out unanswered: recorded, and the entry waits again
    entry = locked_entry(db, entry_id)
    if entry.status != "waiting" or entry.window_ends_at <= now:
        return None
    actor = Actor(None, FRONTEND, defaults=settings.policy_defaults)
    look = look or Look("")
    fitting = _fitting(db, entry, actor, now, settings, look)
    # Recorded only when nothing fits: slots taken by a concurrent booking between the search and
    # the hold (every attempt failed) may leave others, which the next sweep must still see.
    db.execute(sa.delete(WaitlistLook).where(WaitlistLook.entry_id == entry.id))
    if not fitting and look.signal:
        db.add(
            WaitlistLook(
                entry_id=entry.id, looked_under=look.signal, recheck_at=_recheck_at(db, entry, now, settings, actor)
            )
        )
        db.flush()
    for slot, expires_at in fitting[:ATTEMPTS]:
        request = SlotRequest(
            slot.clinic_id,
            slot.practitioner_id,
            slot.room_id,
            slot.treatment_type_id,
            entry.patient_id,
            slot.starts_at,
            slot.procedure_starts_at,
            slot.ends_at,
            entry.course_id,
        )
        try:
            with db.begin_nested():
                hold = place_hold(
                    db, entry.organization_id, request, source="waitlist", expires_at=expires_at, actor=actor
                )
        except DomainError:  # taken by a concurrent booking since the search: the next one
            continue
        made = WaitlistOffer(organization_id=entry.organization_id, entry_id=entry.id, hold=hold, created_at=now)
        db.add(made)
        entry.status = "offered"
        # The partial unique index: a second live offer for the entry fails here, and rolls back.
        db.flush()
        events.add(
            db,
            entry.organization_id,
            "waitlist.offered",
            f"waitlist.offered:{made.id}",
            entry.id,
            _offered_payload(entry, made, hold),
        )
        return made
    return None


def _offered_payload(entry: WaitlistEntry, made: WaitlistOffer, hold: Hold) -> dict:
    """What a frontend needs to message the patient: who, which slot, until when, and how to answer
    (book: POST /v1/appointments {hold_id}; decline: DELETE /v1/holds/{id})."""
    shown = events.hold_payload(hold)
    slot_fields = ("clinic_id", "practitioner_id", "room_id", "treatment_type_id", "starts_at",
                   "procedure_starts_at", "ends_at")  # fmt: skip
    return {
        "waitlist_entry": events.waitlist_payload(entry),
        "offer_id": made.id,
        "patient_id": entry.patient_id,
        "hold": shown,
        "slot": {name: shown[name] for name in slot_fields},
        "expires_at": shown["expires_at"],
    }


def _recheck_at(
    db: Session, entry: WaitlistEntry, now: datetime, settings: WaitlistSettings, actor: Actor
) -> datetime | None:
    """When the clock alone may change what a look just found, with no write to say so: the first
    expiry of a hold live now (read after the search, so every hold it saw is here; one placed after
    it kept a slot that was free to this look), or the booking horizon, which moves with the clock,
    having moved `horizon_recheck` further over a window reaching past it. Notice, same-day and the
    window's start moving on only take starts away."""
    lapse = db.scalar(
        sa.select(sa.func.min(Hold.expires_at)).where(Hold.organization_id == entry.organization_id, Hold.live(now))
    )
    clinics = (
        [db.get_one(Clinic, clinic_id) for clinic_id in entry.clinic_ids]
        if entry.clinic_ids
        else db.scalars(
            sa.select(Clinic).where(Clinic.organization_id == entry.organization_id, Clinic.archived_at.is_(None))
        ).all()
    )
    treatment_type = db.get_one(TreatmentType, entry.treatment_type_id)
    horizon = min(
        [settings.search.horizon]
        + [policies.resolve(db, entry.organization_id, actor.defaults, c, treatment_type).horizon for c in clinics]
    )
    moving = now + settings.horizon_recheck if entry.window_ends_at > now + horizon else None
    return min((at for at in (lapse, moving) if at is not None), default=None)


def _locked_hold(db: Session, hold_id: str) -> Hold:
    return db.scalars(
        sa.select(Hold).where(Hold.id == hold_id).with_for_update(of=Hold).execution_options(populate_existing=True)
    ).one()


def _fitting(
    db: Session, entry: WaitlistEntry, actor: Actor, now: datetime, settings: WaitlistSettings, look: Look
) -> list[tuple[Slot, datetime]]:
    """The free slots of the entry's first window chunk that has any it fits, earliest first, each
    with when its offer would lapse: after `offer_for`, never later than the policy's notice before
    the slot (a slot that leaves less than `shortest_offer` to answer is not offered)."""
    offered_before = {
        (clinic_id, practitioner_id, starts_at)
        for clinic_id, practitioner_id, starts_at in db.execute(
            sa.select(Hold.clinic_id, Hold.practitioner_id, Hold.starts_at)
            .join(WaitlistOffer, WaitlistOffer.hold_id == Hold.id)
            .where(WaitlistOffer.entry_id == entry.id)
        )
    }
    treatment_type = db.get_one(TreatmentType, entry.treatment_type_id)
    notice: dict[str, timedelta] = {}

    def fits(slot: Slot, clinic: ClinicFacts) -> datetime | None:
        """When the offer of `slot` would lapse, or None when the entry does not take it."""
        if (slot.clinic_id, slot.practitioner_id, slot.starts_at) in offered_before:
            return None  # declined or let lapse: the next entry's turn
        if not _preferred(entry, slot, ZoneInfo(clinic.timezone)):
            return None
        if clinic.id not in notice:
            effective = policies.resolve(db, entry.organization_id, actor.defaults, clinic, treatment_type)
            notice[clinic.id] = effective.min_notice
        expires_at = min(now + settings.offer_for, slot.starts_at - notice[clinic.id])
        return expires_at if expires_at - now >= settings.shortest_offer else None

    chunk = max(entry.window_starts_at, now)
    while chunk < entry.window_ends_at:
        upper = min(chunk + _CHUNK, entry.window_ends_at)
        found: list[tuple[Slot, datetime]] = []
        for clinic_id in entry.clinic_ids or [None]:
            # Without preferences or past offers the first few slots are usually enough; all of the
            # chunk's only when none of them fit.
            plain = not (entry.weekdays or entry.time_from is not None or entry.time_to is not None or offered_before)
            for limit in (_FIRST_LOOK, _WHOLE_CHUNK) if plain else (_WHOLE_CHUNK,):
                look.searches += 1
                slots, clinics = _search(db, entry, actor, clinic_id, chunk, upper, limit, settings)
                taken = [(slot, at) for slot in slots if (at := fits(slot, clinics[slot.clinic_id])) is not None]
                if taken or len(slots) < limit:
                    break
            found += taken
        if found:
            return sorted(found, key=lambda f: (f[0].starts_at, f[0].clinic_id, f[0].practitioner_id))
        chunk = upper
    return []


# A chain-wide search stops once this many earliest slots are found (availability_search._earliest_across).
_FIRST_LOOK, _WHOLE_CHUNK = 20, 10_000


def _search(db, entry, actor, clinic_id, start, end, limit, settings) -> tuple[list[Slot], dict[str, ClinicFacts]]:
    query = availability_search.Query(
        entry.treatment_type_id,
        start,
        end,
        clinic_id=clinic_id,
        practitioner_id=entry.practitioner_id,
        patient_id=entry.patient_id,
        limit=limit,
        online_only=True,
    )
    try:
        slots, _, clinics = availability_search.search(db, entry.organization_id, query, settings.search, actor)
    except InvalidInput:  # a clinic or practitioner archived since: nothing there
        return [], {}
    return slots, clinics


def _preferred(entry: WaitlistEntry, slot: Slot, zone: ZoneInfo) -> bool:
    """The entry's weekdays and time-of-day window, on the slot's clinic's clock."""
    local = slot.starts_at.astimezone(zone)
    if entry.weekdays and local.isoweekday() not in entry.weekdays:
        return False
    minute = local.hour * 60 + local.minute
    if entry.time_from is not None and minute < entry.time_from:
        return False
    return entry.time_to is None or minute < entry.time_to
