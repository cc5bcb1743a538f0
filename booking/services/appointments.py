"""Booking services: each is one transaction that either satisfies every rule and
claims its resources, or raises a typed error having written nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from booking.domain import clock, policy, rules
from booking.domain.claims import parse_claim_key
from booking.domain.errors import (
    DomainError,
    HoldExpired,
    IntervalTooShort,
    InvalidInput,
    InvalidTransition,
    NotFound,
    OutsideWorkingHours,
)
from booking.domain.intervals import covers, open_time
from booking.domain.policy import Actor
from booking.domain.timing import Instants, Timing, instants, occupancy
from booking.domain.weekly import Shift
from booking.services import events, patients, policies, queries, tokens, waitlist_offers
from booking.services.changes import check_version
from models import (
    LIVE_STATUSES,
    Appointment,
    Claim,
    Clinic,
    Course,
    FollowUp,
    Hold,
    OpeningHours,
    Patient,
    Practitioner,
    Room,
    TreatmentType,
    WorkingHours,
    new_id,
)
from models.staff import practitioner_clinics, practitioner_treatment_types

CANCEL_REASONS = (
    "patient_request",
    "patient_unwell",
    "clinic_request",
    "practitioner_unavailable",
    "contraindication",
    "rescheduled",
    "other",
)


@dataclass(frozen=True)
class SlotRequest:
    clinic_id: str
    practitioner_id: str
    room_id: str
    treatment_type_id: str
    patient_id: str | None  # None: a booking page's hold, for a patient who registers as it is booked
    starts_at: datetime
    procedure_starts_at: datetime | None = None
    ends_at: datetime | None = None
    course_id: str | None = None
    area: str | None = None


@dataclass
class _CheckedRequest:
    """A request checked against every rule: what to write (the booking's fields and its claims)."""

    request: SlotRequest
    at: Instants
    course_id: str | None
    claims: list[tuple[str, datetime, datetime]]
    clinic: Clinic  # loaded by the check: the new booking's, without reading it again


def _check(
    db: Session, org: str, req: SlotRequest, now: datetime, actor: Actor | None = None, **excluded: Any
) -> _CheckedRequest:
    """Every rule, then the resources; instants in a refusal are shown in the clinic's zone."""
    try:
        return _check_rules(db, org, req, now, actor, **excluded)
    except DomainError as error:
        clinic = db.scalar(sa.select(Clinic).where(Clinic.id == req.clinic_id, Clinic.organization_id == org))
        if clinic:
            error.localized(ZoneInfo(clinic.timezone))
        raise


def _check_rules(
    db: Session,
    org: str,
    req: SlotRequest,
    now: datetime,
    actor: Actor | None,
    *,
    asked_at: datetime | None = None,
    exclude_appointment: str | None = None,
    exclude_hold: str | None = None,
) -> _CheckedRequest:
    # The type, the clinic, the practitioner with the two facts check_qualified needs of their
    # clinics and types, and the room: one read. FOR KEY SHARE OF clinics and populate_existing as
    # queries.one_of_organization(share=True) does; the others are not locked, as before.
    found = db.execute(
        sa.select(
            TreatmentType,
            Clinic,
            Practitioner,
            sa.exists().where(
                practitioner_clinics.c.practitioner_id == Practitioner.id,
                practitioner_clinics.c.clinic_id == Clinic.id,
            ),
            sa.exists().where(
                practitioner_treatment_types.c.practitioner_id == Practitioner.id,
                practitioner_treatment_types.c.treatment_type_id == TreatmentType.id,
            ),
            Room,
        )
        .select_from(TreatmentType)  # one row of each, side by side: joins on their ids
        .join(Clinic, Clinic.id == req.clinic_id)
        .join(Practitioner, Practitioner.id == req.practitioner_id)
        .join(Room, Room.id == req.room_id)
        .where(
            TreatmentType.id == req.treatment_type_id,
            *(
                criterion
                for model in (TreatmentType, Clinic, Practitioner, Room)
                for criterion in queries.in_use(model, org)
            ),
        )
        .with_for_update(read=True, key_share=True, of=Clinic)
        .execution_options(populate_existing=True)
    ).first()
    if found is None:  # one of them is unknown: say which, in the order of the fields
        load = partial(queries.one_of_organization, db, org)
        load(TreatmentType, req.treatment_type_id, "treatment_type_id")
        load(Clinic, req.clinic_id, "clinic_id")
        load(Practitioner, req.practitioner_id, "practitioner_id")
        load(Room, req.room_id, "room_id")
        raise AssertionError("all four found one by one, but not together")  # pragma: no cover
    treatment_type, clinic, practitioner, works_at_clinic, qualified, room = found
    patient = None if req.patient_id is None else _locked_patient(db, org, req.patient_id)

    at = instants(Timing.of(treatment_type), req.starts_at, req.procedure_starts_at)
    if req.ends_at is not None and req.ends_at != at.ends_at:
        raise InvalidInput({"ends_at": [f"Must be {at.ends_at.isoformat()} for this treatment type."]})
    if at.starts_at <= now:
        raise InvalidInput({"starts_at": ["Must be in the future."]})
    policies.check(
        db,
        org,
        actor,
        clinic,
        treatment_type,
        practitioner,
        at.starts_at,
        now,
        asked_at=asked_at,
        exclude_appointment=exclude_appointment,
        exclude_hold=exclude_hold,
    )

    kind = treatment_type.kind
    rules.check_area(req.area, treatment_type.allowed_areas, kind)
    rules.check_qualified(
        treatment_type_id=treatment_type.id,
        qualified_ids=(treatment_type.id,) if qualified else (),
        practitioner_clinic_ids=(clinic.id,) if works_at_clinic else (),
        clinic_id=clinic.id,
        room_clinic_id=room.clinic_id,
        room_capabilities=room.capabilities,
        required_capability=treatment_type.required_capability,
    )
    if patient is None:  # someone not registered yet: a first visit, with no history to count
        course, facts = None, patients.first_visit_facts(treatment_type)
    else:
        course = patients.resolve_course(db, req.course_id, patient.id, treatment_type)
        facts = patients.load_facts(
            db, patient, treatment_type, course, now, exclude_appointment=exclude_appointment, exclude_hold=exclude_hold
        )
    patients.check_patient(facts, at.starts_at, clinic.timezone)
    _check_hours(db, clinic, practitioner, at)

    needs = occupancy(
        Timing.of(treatment_type),
        at,
        clinic_id=clinic.id,
        practitioner_id=practitioner.id,
        room_id=room.id,
        patient_id=patient.id if patient is not None else None,
        numbing_seats=clinic.numbing_area_capacity,
        devices=clinic.device_count,
    )
    resources = sorted({n.resource for n in needs})
    span = (min(n.starts_at for n in needs), max(n.ends_at for n in needs))
    busy, lapsed = queries.claims_in_the_way(
        db, resources, *span, now, exclude_appointment=exclude_appointment, exclude_hold=exclude_hold
    )
    assigned, blocking = rules.conflicts(needs, busy)
    rules.raise_if_blocked(blocking)
    queries.drop_claims(db, lapsed)  # expired holds' claims count for nothing, but the guards see them
    claims = [(assigned[rules.need_key(n)], n.starts_at, n.ends_at) for n in needs]
    return _CheckedRequest(
        replace(req, course_id=course.id if course else None), at, course.id if course else None, claims, clinic
    )


def _locked_patient(db: Session, org: str, patient_id: str) -> Patient:
    # Lock the patient row: one booking at a time per patient keeps the interval
    # and cap rules exact under concurrency (SQLite's BEGIN IMMEDIATE already does).
    # of=Patient: the contraindications come along in the same read, unlocked (an outer join).
    patient = (
        db.scalars(
            sa.select(Patient)
            .where(Patient.id == patient_id, Patient.organization_id == org)
            .options(joinedload(Patient.contraindication_records))
            .with_for_update(of=Patient)
        )
        .unique()
        .first()
    )
    if patient is None:
        raise InvalidInput({"patient_id": [f"Unknown id '{patient_id}'."]})
    return patient


def _check_hours(db: Session, clinic: Clinic, practitioner: Practitioner, at: Instants) -> None:
    blocked = queries.unavailable([practitioner.id], at.starts_at, at.ends_at).subquery()
    time_off = db.execute(sa.select(blocked.c.starts_at, blocked.c.ends_at)).all()
    # The clinic's opening hours and the practitioner's there, in one read (0: the clinic's, 1: theirs).
    weekly = db.execute(
        sa.union_all(
            sa.select(
                sa.literal(0).label("whose"), OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute
            ).where(OpeningHours.clinic_id == clinic.id),
            sa.select(
                sa.literal(1).label("whose"), WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.end_minute
            ).where(WorkingHours.practitioner_id == practitioner.id, WorkingHours.clinic_id == clinic.id),
        )
    ).all()
    shifts: tuple[list[Shift], list[Shift]] = ([], [])
    for whose, weekday, start_minute, end_minute in weekly:
        shifts[whose].append(Shift(weekday, start_minute, end_minute, zone=clinic.timezone))
    open_ = open_time(
        opening=shifts[0],
        working=shifts[1],
        closures=[(c.start_date, c.end_date) for c in clinic.closures],
        time_off=[tuple(t) for t in time_off],
        zone=clinic.timezone,
        start=at.starts_at,
        end=at.ends_at,
    )
    if not covers(open_, at.starts_at, at.ends_at):
        raise OutsideWorkingHours(
            "Outside the practitioner's hours at this clinic, the clinic's opening hours, "
            "or in a closure, time off or a busy time of their external calendar."
        )


def _claim(
    db: Session,
    org: str,
    plan: _CheckedRequest,
    now: datetime,
    *,
    appointment_id: str | None = None,
    hold_id: str | None = None,
    expires_at: datetime | None = None,
) -> None:
    rows = [
        Claim.row(
            organization_id=org,
            resource=resource,
            starts_at=start,
            ends_at=end,
            appointment_id=appointment_id,
            hold_id=hold_id,
            expires_at=expires_at,
        )
        for resource, start, end in plan.claims
    ]
    # All claims in one INSERT. On PostgreSQL the exclusion constraint still decides, but says no by
    # inserting fewer rows (ON CONFLICT DO NOTHING, which waits for a concurrent writer's claim like
    # any conflict), not by an error: the transaction stays usable without a savepoint around the
    # insert, and the refusal below rolls it all back. SQLite's trigger aborts the statement, inside
    # a savepoint (no network round trip there).
    if db.get_bind().dialect.name == "postgresql":
        inserted = db.execute(postgresql.insert(Claim).values(rows).on_conflict_do_nothing().returning(Claim.id))
        if len(inserted.all()) == len(rows):
            return
        cause: Exception | None = None
    else:
        try:
            with db.begin_nested():
                db.execute(sa.insert(Claim).values(rows))
            return
        except IntegrityError as exc:
            cause = exc
    # Another writer claimed an intersecting range between our check and our
    # insert (the database said no): name what it claimed.
    resources = sorted({parse_claim_key(r).resource for r, _, _ in plan.claims})
    start, end = min(c[1] for c in plan.claims), max(c[2] for c in plan.claims)
    taken = {r for r, _, _ in plan.claims}
    blocking = [
        b
        for b in queries.busy_claims(db, resources, start, end, now)
        if b.resource in taken and (b.appointment_id, b.hold_id) != (appointment_id, hold_id)
    ]
    raise rules.slot_unavailable(blocking, "The slot was taken by a concurrent booking.") from cause


def _slot_fields(plan: _CheckedRequest) -> dict:
    req = plan.request
    return dict(
        clinic_id=req.clinic_id,
        practitioner_id=req.practitioner_id,
        room_id=req.room_id,
        treatment_type_id=req.treatment_type_id,
        patient_id=req.patient_id,
        course_id=plan.course_id,
        area=req.area,
        starts_at=plan.at.starts_at,
        procedure_starts_at=plan.at.procedure_starts_at,
        ends_at=plan.at.ends_at,
    )


def _override(actor: Actor | None) -> dict[str, Any]:
    """What a staff key's override records on the appointment or hold (and so in its events)."""
    if actor is None or not actor.overriding:
        return {}
    return {"override_key_id": actor.key_id, "override_reason": actor.override_reason}


# A reschedule's reason is free text, bounded as an override's is (the column, migration 0014).
RESCHEDULE_REASON_MAX = 500


def _by(actor: Actor | None, what: str) -> dict[str, Any]:
    """Who did `what` (created, rescheduled, cancelled): the key's id and channel; nothing when no
    key acts (the scheduler, a script), so the fields stay null."""
    if actor is None or actor.key_id is None:
        return {}
    return {f"{what}_by_key_id": actor.key_id, f"{what}_by_channel": actor.channel}


def place_hold(
    db: Session,
    org: str,
    req: SlotRequest,
    *,
    ttl: timedelta | None = None,
    source: str = "frontend",
    expires_at: datetime | None = None,
    actor: Actor | None = None,
    hold_minutes: int | None = None,
    course_plan_id: str | None = None,
) -> Hold:
    """A hold for `ttl`, or, asked by a key, for `hold_minutes` within the policy's bounds
    (`expires_at`, when given, is the hold's expiry all the same: a course plan's one expiry)."""
    now = clock.now()
    plan = _check(db, org, req, now, actor)
    if actor is not None:
        effective = policies.resolve(db, org, actor.defaults, plan.clinic, db.get(TreatmentType, req.treatment_type_id))
        ttl = policy.hold_length(effective, actor, hold_minutes)
    if expires_at is None:
        if ttl is None:
            raise ValueError("place_hold needs ttl, expires_at or an actor whose policy sets the length")
        expires_at = now + ttl
    hold = Hold(
        organization_id=org,
        source=source,
        expires_at=expires_at,
        clinic=plan.clinic,
        course_plan_id=course_plan_id,
        **_slot_fields(plan),
        **_override(actor),
    )
    db.add(hold)
    db.flush()
    _claim(db, org, plan, now, hold_id=hold.id, expires_at=hold.expires_at)
    db.flush()
    return hold


def book(db: Session, org: str, req: SlotRequest, actor: Actor | None = None) -> Appointment:
    now = clock.now()
    plan = _check(db, org, req, now, actor)
    appointment = _create(db, org, plan, now, **_override(actor), **_by(actor, "created"))
    events.appointment_changed(db, appointment, "appointment.created")
    db.flush()
    return appointment


def _create(db: Session, org: str, plan: _CheckedRequest, now: datetime, **extra: Any) -> Appointment:
    # created_at from the domain clock: reminders compare it with the moments they are due.
    # Every new appointment gets the patient's manage link token: shown in the answer and the
    # event of what created it (`manage_token`, not a column), stored as its digest only.
    token, token_digest = tokens.new_token(tokens.MANAGE_TOKEN_PREFIX)
    appointment = Appointment(
        organization_id=org,
        status="booked",
        created_at=now,
        clinic=plan.clinic,
        manage_token_digest=token_digest,
        **_slot_fields(plan),
        **extra,
    )
    appointment.manage_token = token
    db.add(appointment)
    db.flush()
    _claim(db, org, plan, now, appointment_id=appointment.id)
    return appointment


def hold_status(hold: Hold, now: datetime) -> str:
    if hold.outcome:
        return hold.outcome
    return "active" if hold.live(now) else "expired"


def get_hold(db: Session, org: str, hold_id: str, *, lock: bool = False, expected_version: int | None = None) -> Hold:
    """With `lock`, the row is locked and re-read (populate_existing), then compared with `expected_version`."""
    query = sa.select(Hold).where(Hold.id == hold_id, Hold.organization_id == org)
    # of=Hold: the joined clinic must not be locked too (lifecycle changes would block every
    # booking at the clinic, and lock clinic then patient where bookings lock patient then clinic).
    hold = db.scalar(_locked(query, Hold) if lock else query)
    if hold is None:
        raise NotFound(f"No hold with id '{hold_id}'.")
    check_version(hold, expected_version)
    return hold


def _locked(query, model):
    return query.with_for_update(of=model).execution_options(populate_existing=True)


def book_from_hold(
    db: Session,
    org: str,
    hold_id: str,
    *,
    course_id: str | None = None,
    area: str | None = None,
    actor: Actor | None = None,
    through_plan: bool = False,
) -> Appointment:
    """Consume a live hold; every rule is checked again at this moment.

    A course plan's hold is booked with its plan (`through_plan`, by
    booking.services.course_plans.confirm_plan), never alone: the plan is all or nothing.

    The policy's notice, same-day and horizon count from when the hold was placed (the moment the
    slot was promised); a hold a staff key placed overriding the policy books with its override.
    The appointment's creator is the key that books it (`actor`), whichever key placed the hold."""
    now = clock.now()
    hold = get_hold(db, org, hold_id, lock=True)
    status = hold_status(hold, now)
    _only_with_its_plan(hold, status, through_plan, "booked")
    if status == "booked":
        raise InvalidTransition(
            f"The hold was already booked as {hold.appointment_id}.", appointment_id=hold.appointment_id
        )
    if status != "active":
        raise HoldExpired(f"The hold is {status}; search availability again.", hold_id=hold.id)
    if hold.patient_id is None:  # a booking page's: registering its patient is part of booking it
        raise InvalidInput(
            {"hold_id": ["A booking page's hold is booked with its hold_token (POST /v1/booking/appointments)."]}
        )
    req = SlotRequest(
        hold.clinic_id,
        hold.practitioner_id,
        hold.room_id,
        hold.treatment_type_id,
        hold.patient_id,
        hold.starts_at,
        hold.procedure_starts_at,
        None,
        course_id or hold.course_id,
        area or hold.area,
    )
    overridden = {"override_key_id": hold.override_key_id, "override_reason": hold.override_reason}
    if hold.override_key_id is None:
        overridden = _override(actor)
    bound = None if hold.override_key_id else actor
    plan = _check(db, org, req, now, bound, asked_at=hold.created_at, exclude_hold=hold.id)
    db.execute(sa.delete(Claim).where(Claim.hold_id == hold.id))
    appointment = _create(
        db, org, plan, now, hold_id=hold.id, course_plan_id=hold.course_plan_id, **overridden, **_by(actor, "created")
    )
    hold.outcome, hold.appointment_id = "booked", appointment.id
    if hold.source == "follow_up":  # the patient confirmed the proposal
        _follow_up_became(db, hold, "booked", booked_appointment_id=appointment.id)
    if hold.source == "waitlist":  # the patient took the offer: the entry is fulfilled
        waitlist_offers.answered(db, hold, "booked", now, appointment.id)
    events.appointment_changed(db, appointment, "appointment.created")
    db.flush()
    return appointment


def extend_hold(
    db: Session,
    org: str,
    hold_id: str,
    actor: Actor,
    hold_minutes: int | None = None,
    expected_version: int | None = None,
) -> Hold:
    """Once: the hold then lasts `hold_minutes` (default the policy's) from now, and at most
    `max_hold_minutes` from when it was placed (a staff key overriding is bound by neither)."""
    now = clock.now()
    hold = get_hold(db, org, hold_id, lock=True, expected_version=expected_version)
    status = hold_status(hold, now)
    _only_with_its_plan(hold, status, False, "extended")  # its plan's holds share one expiry
    if status != "active":
        raise HoldExpired(f"The hold is {status}; search availability again.", hold_id=hold.id)
    if hold.extended_at is not None:
        raise InvalidTransition("A hold is extended once; this one already was.", current_status=status)
    effective = policies.resolve(
        db, org, actor.defaults, hold.clinic, db.get_one(TreatmentType, hold.treatment_type_id)
    )
    expires_at = now + policy.hold_length(effective, actor, hold_minutes)
    latest = hold.created_at + timedelta(minutes=effective.max_hold_minutes)
    if expires_at > latest and not actor.overriding:
        raise InvalidInput(
            {
                "hold_minutes": [
                    f"The hold may last until {latest.astimezone(ZoneInfo(hold.clinic.timezone)).isoformat()} "
                    f"at most (max_hold_minutes {effective.max_hold_minutes} from when it was placed)."
                ]
            }
        )
    hold.expires_at, hold.extended_at = max(expires_at, hold.expires_at), now
    if actor.overriding:
        hold.override_key_id, hold.override_reason = actor.key_id, actor.override_reason
    db.execute(sa.update(Claim).where(Claim.hold_id == hold.id).values(expires_at=hold.expires_at))
    db.flush()
    return hold


def _follow_up_became(db: Session, hold: Hold, status: str, **fields: Any) -> None:
    db.execute(
        sa.update(FollowUp)
        .where(FollowUp.hold_id == hold.id, FollowUp.status == "proposed")
        .values(status=status, updated_at=clock.now(), version=FollowUp.version + 1, **fields)
    )


def _only_with_its_plan(hold: Hold, status: str, through_plan: bool, what: str) -> None:
    if hold.course_plan_id is not None and status == "active" and not through_plan:
        raise InvalidTransition(
            f"The hold is a session of course plan {hold.course_plan_id}: it is {what} with the plan "
            f"(/v1/course-plans/{hold.course_plan_id}), all or nothing.",
            current_status=status,
        )


def release_hold(
    db: Session, org: str, hold_id: str, expected_version: int | None = None, *, through_plan: bool = False
) -> Hold:
    """A course plan's live hold is released with its plan (`through_plan`), never alone."""
    hold = get_hold(db, org, hold_id, lock=True, expected_version=expected_version)
    _only_with_its_plan(hold, hold_status(hold, clock.now()), through_plan, "released")
    if not expire_hold(db, hold, clock.now()):  # ran out before the patient answered: not a decline
        if hold.outcome is None:
            hold.outcome = "released"
            if hold.source == "follow_up":  # the patient declined the proposal
                _follow_up_became(db, hold, "declined")
            if hold.source == "waitlist":  # declined: the slot goes to the next entry it fits
                waitlist_offers.answered(db, hold, "declined", clock.now())
        db.execute(sa.delete(Claim).where(Claim.hold_id == hold.id))
    db.flush()
    return hold


def expire_hold(db: Session, hold: Hold, now: datetime) -> bool:
    """Release a hold whose time ran out (the scheduler's sweep); False if it was no longer live."""
    if not hold.lapsed(now):
        return False
    hold.outcome = "expired"
    db.execute(sa.delete(Claim).where(Claim.hold_id == hold.id))
    if hold.source == "follow_up":
        _follow_up_became(db, hold, "expired")
    if hold.source == "waitlist":
        waitlist_offers.answered(db, hold, "expired", now)
    events.add(
        db,
        hold.organization_id,
        "hold.expired",
        f"hold.expired:{hold.id}",
        hold.id,
        {"hold": events.hold_payload(hold)},
    )
    return True


def get_appointment(
    db: Session, org: str, appointment_id: str, *, lock: bool = False, expected_version: int | None = None
) -> Appointment:
    query = sa.select(Appointment).where(Appointment.id == appointment_id, Appointment.organization_id == org)
    appointment = db.scalar(_locked(query, Appointment) if lock else query)  # see get_hold
    if appointment is None:
        raise NotFound(f"No appointment with id '{appointment_id}'.")
    check_version(appointment, expected_version)
    return appointment


def reschedule(
    db: Session,
    org: str,
    appointment_id: str,
    changes: dict,
    expected_version: int | None = None,
    actor: Actor | None = None,
    reason: str | None = None,
) -> Appointment:
    """A new appointment linked by `rescheduled_from`; the old one is cancelled; one transaction.

    `expected_version` is the old appointment's. A frontend moves it only before the cut-off.
    The old one records who moved it (`rescheduled_by`, and `cancelled_by` as it is cancelled),
    the `reason` if one is given, and `rescheduled_to`; the new one is created by the same key."""
    if reason is not None and not 1 <= len(reason) <= RESCHEDULE_REASON_MAX:
        raise InvalidInput({"reason": [f"Length must be between 1 and {RESCHEDULE_REASON_MAX}."]})
    now = clock.now()
    old = get_appointment(db, org, appointment_id, lock=True, expected_version=expected_version)
    if old.status != "booked":
        raise InvalidTransition(f"Only a booked appointment can be rescheduled; this one is {old.status}.")
    _check_cutoff(db, org, actor, old, now)
    if _names_its_own_slot(db, old, changes):  # nothing to move: no new appointment, no new version
        return old
    fields = {
        f: getattr(old, f)
        for f in (
            "clinic_id",
            "practitioner_id",
            "room_id",
            "treatment_type_id",
            "patient_id",
            "starts_at",
            "course_id",
            "area",
        )
    }
    if "starts_at" in changes and "procedure_starts_at" not in changes:
        fields["procedure_starts_at"] = None
    else:
        fields["procedure_starts_at"] = old.procedure_starts_at
    fields.update(changes)
    try:
        plan = _check(db, org, SlotRequest(**fields), now, actor, exclude_appointment=old.id)
    except IntervalTooShort as refused:  # rule 5 both ways: name the neighbours it would come too close to
        raise _naming_neighbours(db, old, refused, now) from None
    replacement_id = new_id("appt")  # known before the old row is written, so it is written once
    _end(
        db,
        old,
        "cancelled",
        now,
        cancel_reason="rescheduled",
        rescheduled_to=replacement_id,
        reschedule_reason=reason,
        **_by(actor, "rescheduled"),
        **_by(actor, "cancelled"),
    )
    appointment = _create(
        db,
        org,
        plan,
        now,
        id=replacement_id,
        rescheduled_from=old.id,
        course_plan_id=old.course_plan_id,
        **_override(actor),
        **_by(actor, "created"),
    )
    events.appointment_changed(db, appointment, "appointment.rescheduled", previous=old)
    db.flush()
    return appointment


def _naming_neighbours(db: Session, old: Appointment, refused: IntervalTooShort, now: datetime) -> IntervalTooShort:
    """The refusal with `conflicts`: the patient's other booked appointments and live holds whose
    starts the new slot is too close to (a recorded past session has no id to name here)."""
    starts = refused.facts.get("conflicting_starts") or []
    zone = ZoneInfo(old.clinic.timezone)
    found: list[tuple[datetime, dict[str, Any]]] = []
    if starts:
        for appointment in db.scalars(
            sa.select(Appointment).where(
                Appointment.patient_id == old.patient_id,
                Appointment.id != old.id,
                Appointment.status.in_(LIVE_STATUSES),
                Appointment.starts_at.in_(starts),
            )
        ):
            found.append((appointment.starts_at, {"appointment_id": appointment.id}))
        for hold in db.scalars(
            sa.select(Hold).where(Hold.patient_id == old.patient_id, Hold.live(now), Hold.starts_at.in_(starts))
        ):
            found.append((hold.starts_at, {"hold_id": hold.id}))
    refused.facts["conflicts"] = [
        {**ids, "starts_at": start.astimezone(zone)} for start, ids in sorted(found, key=lambda f: f[0])
    ]
    return refused


def _check_cutoff(db: Session, org: str, actor: Actor | None, appointment: Appointment, now: datetime) -> None:
    try:
        policies.check_cutoff(db, org, actor, appointment, now)
    except DomainError as error:
        raise error.localized(ZoneInfo(appointment.clinic.timezone)) from None


def _names_its_own_slot(db: Session, old: Appointment, changes: dict) -> bool:
    """A reschedule to the very slot the appointment has (a starts_at alone gets the default
    numbing lead, so it is the same slot only if the appointment has that lead)."""
    if any(getattr(old, field) != value for field, value in changes.items()):
        return False
    if "starts_at" not in changes or "procedure_starts_at" in changes:
        return True
    numbing = db.get_one(TreatmentType, old.treatment_type_id).numbing_minutes
    return old.procedure_starts_at == old.starts_at + timedelta(minutes=numbing)


# Lifecycle: status -> statuses it may move to.
TRANSITIONS = {
    "booked": {"checked_in", "completed", "cancelled", "no_show"},
    "checked_in": {"completed", "cancelled"},
}
CHECK_IN_EARLY = timedelta(hours=2)


def _end(db: Session, appointment: Appointment, status: str, now: datetime, **fields: Any) -> None:
    allowed = TRANSITIONS.get(appointment.status, set())
    if status not in allowed:
        raise InvalidTransition(
            f"A {appointment.status} appointment cannot become {status}.", current_status=appointment.status
        )
    appointment.status = status
    for name, value in fields.items():
        setattr(appointment, name, value)
    if status == "cancelled":
        appointment.cancelled_at = now
        db.execute(sa.delete(Claim).where(Claim.appointment_id == appointment.id))
    if fields.get("cancel_reason") != "rescheduled":  # a reschedule is one event, on the new appointment
        events.appointment_changed(db, appointment, f"appointment.{status}")


def cancel(
    db: Session,
    org: str,
    appointment_id: str,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
    actor: Actor | None = None,
) -> Appointment:
    """A frontend cancels only before the policy's cut-off."""
    if reason not in CANCEL_REASONS or reason == "rescheduled":
        raise InvalidInput(
            {"reason": [f"Must be one of: {', '.join(r for r in CANCEL_REASONS if r != 'rescheduled')}."]}
        )
    appointment = get_appointment(db, org, appointment_id, lock=True, expected_version=expected_version)
    if appointment.status in TRANSITIONS:
        _check_cutoff(db, org, actor, appointment, clock.now())
    _end(db, appointment, "cancelled", clock.now(), cancel_reason=reason, cancel_note=note, **_by(actor, "cancelled"))
    db.flush()
    return appointment


def check_in(db: Session, org: str, appointment_id: str, expected_version: int | None = None) -> Appointment:
    now = clock.now()
    appointment = get_appointment(db, org, appointment_id, lock=True, expected_version=expected_version)
    if appointment.status == "booked" and now < appointment.starts_at - CHECK_IN_EARLY:
        raise InvalidTransition("Check-in opens two hours before the appointment.", current_status=appointment.status)
    _end(db, appointment, "checked_in", now, checked_in_at=now)
    db.flush()
    return appointment


def complete(db: Session, org: str, appointment_id: str, expected_version: int | None = None) -> Appointment:
    """Completing a session counts it on its course; a course at its cap becomes complete."""
    now = clock.now()
    appointment = get_appointment(db, org, appointment_id, lock=True, expected_version=expected_version)
    if appointment.status in TRANSITIONS and now < appointment.starts_at:
        raise InvalidTransition(
            "An appointment cannot be completed before it starts.", current_status=appointment.status
        )
    _end(db, appointment, "completed", now, completed_at=now)
    if appointment.course_id:
        count_session(db.get_one(Course, appointment.course_id), appointment.starts_at)
    db.flush()
    return appointment


def no_show(db: Session, org: str, appointment_id: str, expected_version: int | None = None) -> Appointment:
    now = clock.now()
    appointment = get_appointment(db, org, appointment_id, lock=True, expected_version=expected_version)
    if appointment.status in TRANSITIONS and now < appointment.starts_at:
        raise InvalidTransition(
            "A patient can be marked as not showing only once the start has passed.", current_status=appointment.status
        )
    _end(db, appointment, "no_show", now)
    db.flush()
    return appointment


def count_session(course: Course, started_at: datetime) -> None:
    course.sessions_completed += 1
    if course.last_session_at is None or started_at > course.last_session_at:
        course.last_session_at = started_at
    if course.sessions_completed >= course.max_sessions and course.status == "active":
        course.status = "complete"
