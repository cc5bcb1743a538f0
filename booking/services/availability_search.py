"""The availability service: loads a window's data with indexed range queries and
hands it to the pure engine in booking.domain.availability."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import QueryableAttribute, Session

from booking.domain import clock
from booking.domain import policy as booking_policy
from booking.domain.availability import PractitionerHours, Result, Search, Slot, evening_first, find_slots
from booking.domain.claims import claim_key
from booking.domain.errors import DomainError, InvalidInput
from booking.domain.intervals import (
    Interval,
    clinic_open,
    closed_days,
    intersect,
    local_dates,
    staff_open,
    subtract,
    weekly,
)
from booking.domain.timing import LONGEST_CLAIM, Timing
from booking.domain.weekly import Shift
from booking.services import availability_cache, patients, policies
from booking.services.availability_cache import ClinicFacts, TreatmentFacts
from booking.services.queries import one_of_organization
from booking.services.tenancy import key_live
from models import ApiKey, Appointment, Claim, ExternalBusy, Organization, Patient, TimeOff


@dataclass(frozen=True)
class Settings:
    grid_minutes: int = 15
    min_notice: timedelta = timedelta(hours=2)
    horizon: timedelta = timedelta(days=90)
    max_window: timedelta = timedelta(days=31)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Settings:
        """AVAILABILITY_GRID_MINUTES, AVAILABILITY_MIN_NOTICE_MINUTES and AVAILABILITY_HORIZON_DAYS,
        read alike by the web app and the scheduler. A value that is not a whole number in range
        is a startup error naming it, never a search that fails or offers nothing later."""

        def whole(name: str, default: int, lowest: int) -> int:
            text = env.get(name, str(default)).strip()
            if not text.isascii() or not text.isdigit() or int(text) < lowest:
                raise ValueError(f"{name} must be a whole number of at least {lowest}, not {text!r}")
            return int(text)

        return cls(
            grid_minutes=whole("AVAILABILITY_GRID_MINUTES", 15, 1),
            min_notice=timedelta(minutes=whole("AVAILABILITY_MIN_NOTICE_MINUTES", 120, 0)),
            horizon=timedelta(days=whole("AVAILABILITY_HORIZON_DAYS", 90, 1)),
        )


@dataclass(frozen=True)
class Query:
    treatment_type_id: str
    start: datetime
    end: datetime
    clinic_id: str | None = None
    practitioner_id: str | None = None
    room_id: str | None = None
    patient_id: str | None = None
    limit: int = 50
    order: str = "earliest"
    online_only: bool = False  # a frontend's search: practitioners bookable online only
    # False: the patient's claims still block, but rules 1, 2, 5 and 6 are the caller's to check
    # (the course planner checks them against the sessions it has planned before each one).
    patient_rules: bool = True
    # True: no patient_id, and the search is for someone the clinic has never seen (a booking page's
    # visitor, who registers as they book): their rules are a first visit's (patients.first_visit_facts).
    first_visit: bool = False


def search(
    db: Session,
    org: str,
    query: Query,
    settings: Settings = Settings(),
    actor: booking_policy.Actor | None = None,
    key: KeyShown | None = None,
) -> tuple[list[Slot], DomainError | None, dict[str, ClinicFacts]]:
    """(slots, why the patient's rules ruled the window out, {clinic_id: clinic}).

    With `key`, a window read also shows whether that API key is live (`key.live`).

    With an `actor` bound by the booking policy, each clinic's window and grid are its effective
    policy's (notice, same-day, horizon, grid), and a slot is offered only if that actor could book it.

    The treatment type, clinics, practitioners, rooms and the organization's policy come from the
    worker's catalog (booking/services/availability_cache.py) as if current; an answer is given only
    once a statement of the search (a clinic's window read, else one read of the stamp) has shown
    them current, and the search starts again from the database's otherwise."""
    if query.end <= query.start:
        raise InvalidInput({"end": ["Must be after start."]})
    if query.end - query.start > settings.max_window:
        raise InvalidInput({"end": [f"A window spans at most {settings.max_window.days} days."]})
    now = clock.now()
    conn = db.connection()
    cache = availability_cache.cache_for(conn)
    for attempt in range(_ATTEMPTS):
        strict = attempt < _ATTEMPTS - 1  # the last: changing faster than it can be read, as read now
        catalog = cache.catalog(org) if strict else None
        proof = _Proof(conn, org, catalog or availability_cache.load_catalog(conn, org), strict, key)
        try:
            try:
                answer = _search(db, org, query, settings, actor, now, proof)
            except DomainError:  # a refusal made from an outdated catalog is no answer either
                proof.settle()
                raise
            proof.settle()
            return answer
        except availability_cache.Stale:
            cache.forget(org)
    raise AssertionError("the last attempt is not strict")  # pragma: no cover


_ATTEMPTS = 4


@dataclass
class KeyShown:
    """An API key the caller has taken on trust (api/auth.py): set `live` when a window read of the
    search found it neither revoked nor gone (tenancy.key_live)."""

    key_id: str
    live: bool = False


class _Proof:
    """The catalog a search works from, and whether a statement of the search has shown it current
    (its stamp, read in the same statement as a clinic's window, equal to the catalog's)."""

    def __init__(
        self, conn: Connection, org: str, catalog: availability_cache.Catalog, strict: bool, key: KeyShown | None
    ) -> None:
        self.conn, self.org, self.catalog, self.strict, self.key = conn, org, catalog, strict, key
        self.shown = False

    def check(self, stamp: availability_cache.Stamp | None) -> None:
        if stamp == self.catalog.stamp:
            self.shown = True
        elif self.strict:
            raise availability_cache.Stale

    def settle(self) -> None:
        """Before an answer or a refusal that no window read has proven: one read of the stamp."""
        if not self.shown:
            self.check(availability_cache.read_stamp(self.conn, self.org))

    @staticmethod
    def known(ids: Collection[str], object_id: str, field: str) -> None:
        """An id the catalog does not know: a 422 'Unknown id' like of_organization's (another
        organization's, an archived or a missing one), once search() has shown the catalog current."""
        if object_id not in ids:
            raise InvalidInput({field: [f"Unknown id '{object_id}'."]})

    def setup(self, clinic: ClinicFacts) -> availability_cache.ClinicSetup:
        """The clinic's set-up under the catalog's token: cached, or read now."""
        cache = availability_cache.cache_for(self.conn)
        setup = cache.get(self.org, clinic.id) if self.strict else None
        if setup is None or setup.version != self.catalog.version:
            setup = availability_cache.load(self.conn, self.org, clinic.id, clinic.timezone)
            if not self.strict:
                cache.forget(self.org)
            elif setup.version != self.catalog.version:
                raise availability_cache.Stale
        return setup


def _search(
    db: Session,
    org: str,
    query: Query,
    settings: Settings,
    actor: booking_policy.Actor | None,
    now: datetime,
    proof: _Proof,
) -> tuple[list[Slot], DomainError | None, dict[str, ClinicFacts]]:
    catalog = proof.catalog
    if actor is None or not actor.bound:
        start, end = max(query.start, now + settings.min_notice), min(query.end, now + settings.horizon)
    else:  # each clinic's effective policy bounds the window (_policy_bounds), not the deployment's settings
        start, end = query.start, query.end
    proof.known(catalog.treatment_types, query.treatment_type_id, "treatment_type_id")
    treatment_type = catalog.treatment_types[query.treatment_type_id]
    if query.clinic_id:
        proof.known(catalog.clinics, query.clinic_id, "clinic_id")
        clinics = {query.clinic_id: catalog.clinics[query.clinic_id]}
    else:
        clinics = dict(catalog.clinics)
    if query.practitioner_id:
        proof.known(catalog.practitioners, query.practitioner_id, "practitioner_id")
    if query.room_id:
        proof.known(catalog.rooms, query.room_id, "room_id")
    allows: patients.PatientFacts | None = None  # the patient's rules, when a patient is named
    previous_practitioner = None
    if query.first_visit and not query.patient_id:
        allows = patients.first_visit_facts(treatment_type)
    elif query.patient_id and query.patient_rules:
        patient = one_of_organization(db, org, Patient, query.patient_id, "patient_id")
        try:
            course = patients.resolve_course(db, None, patient.id, treatment_type)
        except DomainError as refused:
            return [], refused, clinics
        allows = patients.load_facts(db, patient, treatment_type, course, now)
        previous_practitioner = db.scalar(
            sa.select(Appointment.practitioner_id)
            .where(Appointment.patient_id == patient.id, Appointment.status == "completed")
            .order_by(Appointment.starts_at.desc())
            .limit(1)
        )
    if start >= end:
        return [], None, clinics
    if query.clinic_id is None and query.order != "evening" and 1 <= query.limit <= EARLY_STOP_LIMIT:
        found, refusal = _earliest_across(
            db, proof, actor, clinics, treatment_type, query, start, end, now, settings, allows, previous_practitioner
        )
        return found, (None if found else refusal), clinics
    found, refusal = [], None
    for clinic in clinics.values():
        bounds = _policy_bounds(catalog, actor, clinic, treatment_type, query, start, end, now, settings)
        if isinstance(bounds, DomainError):  # not bookable online: nothing here for a frontend
            continue
        c_start, c_end, c_settings, cap = bounds
        if c_start >= c_end:
            continue
        result = _search_clinic(
            db, proof, clinic, treatment_type, query, c_start, c_end, now, c_settings, cap, allows,
            previous_practitioner,
        )  # fmt: skip
        found += result.slots
        refusal = refusal or result.refusal
    order = _evening_key(clinics) if query.order == "evening" else (lambda slot: slot.starts_at)
    found = sorted(found, key=order)[: query.limit]
    return found, (None if found else refusal), clinics


# A chain-wide search in the order of start (order=earliest) for at most this many slots goes stage
# by stage through the window (_earliest_across) rather than clinic by clinic; beyond it (none of the
# API's limits, only callers that want everything) every clinic is searched whole and merged.
EARLY_STOP_LIMIT = 10_000


def _search_clinic(
    db: Session,
    proof: _Proof,
    clinic: ClinicFacts,
    treatment_type: TreatmentFacts,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
    cap: int | None,
    allows: patients.PatientFacts | None,
    previous: str | None,
) -> Result:
    """One clinic over its whole policy window [start, end): the exhaustive search's unit."""
    search_ = _build(db, clinic, treatment_type, query, start, end, now, settings, allows, previous, proof=proof)
    if cap is not None:  # the days at the policy's daily cap are closed to them
        capped = policies.capped_days(db, cap, start, end, ZoneInfo(clinic.timezone), now)
        for hours in search_.practitioners:
            hours.open[:] = subtract(hours.open, capped.get(hours.practitioner_id, []))
    return find_slots(search_)


@dataclass
class _Member:
    """A clinic of a chain-wide search: its policy window [start, end), grid and daily cap, and the
    first instant it could offer anything (_first_open)."""

    rank: int  # by clinic id: ties between clinics go to the smaller id, as in the exhaustive search
    clinic: ClinicFacts
    setup: availability_cache.ClinicSetup
    window: _Window
    first: datetime
    start: datetime
    end: datetime
    settings: Settings
    cap: int | None
    capped: dict[str, list[Interval]] | None = None  # the policy's capped days over [start, end), once read
    # Its practitioners in the order of _preference, when read before the stages (else by id).
    order: list[tuple[str, tuple[Shift, ...]]] | None = None


def _earliest_across(
    db: Session,
    proof: _Proof,
    actor: booking_policy.Actor | None,
    clinics: dict[str, ClinicFacts],
    treatment_type: TreatmentFacts,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
    allows: patients.PatientFacts | None,
    previous: str | None,
) -> tuple[list[Slot], DomainError | None]:
    """The `query.limit` earliest slots across the clinics, exactly as the exhaustive search orders
    them (by start, then by clinic id), with work that grows with what the answer needs rather than
    with the chain.

    The window is searched in stages [lo, hi) of absolute time, each twice as long as the one before
    (the first about 4 grid steps per slot wanted per clinic): one statement reads every clinic's
    claims, time off and busy times for the stage, and each clinic that can be open then is searched
    for its starts in it. The engine decides each start on its own, so a clinic's starts in [lo, hi)
    are those of its whole-window search; once `limit` are in hand, no later stage can place one
    before them and the walk stops. Which practitioner takes a start depends on their load over the
    clinic's whole window (_preference): the first pass decides the starts without it, and the
    clinics of the answer are then decided again in the order of that load, read as one sum per
    practitioner (_loads)."""
    conn = db.connection()
    rank = {clinic_id: i for i, clinic_id in enumerate(clinics)}  # by id, as _clinics gives them
    members = []
    for clinic in clinics.values():
        bounds = _policy_bounds(proof.catalog, actor, clinic, treatment_type, query, start, end, now, settings)
        if isinstance(bounds, DomainError):
            continue
        c_start, c_end, c_settings, cap = bounds
        if c_start >= c_end:
            continue
        setup = proof.setup(clinic)
        first = _first_open(setup, conn, treatment_type, query, c_start, c_end)
        if first is not None:  # never open to the practitioners considered: no slot, no refusal
            window = _window_of(setup, conn, treatment_type, query)
            members.append(_Member(rank[clinic.id], clinic, setup, window, first, c_start, c_end, c_settings, cap))
    timing = Timing.of(treatment_type)
    after = _reach(timing)
    found: list[tuple[datetime, int, Slot, tuple[_Member, Search]]] = []
    refusals: dict[int, DomainError] = {}
    # An answer of two slots or more per clinic takes most clinics: their practitioners are ordered
    # before the stages (one sum per practitioner for all) rather than searched again after them.
    ordered = query.limit >= 2 * len(members) and any(len(m.window.practitioners) > 1 for m in members)
    if ordered:
        loads = _loads(conn, _practitioners_by_window(members), now)
        for member in members:
            load = loads[(member.start, member.end)]
            member.order = sorted(member.window.practitioners, key=lambda ps: _load_key(previous, load, ps[0]))
    lo, last = min((m.first for m in members), default=end), max((m.end for m in members), default=end)
    grid_step = timedelta(minutes=min((m.settings.grid_minutes for m in members), default=settings.grid_minutes))
    # The first stage: about 4 grid steps per slot wanted per clinic (at least one step), so that what it
    # searches, summed over the clinics, is about the same for 5 clinics as for 50.
    width = grid_step * -(-4 * query.limit // max(1, len(members)))
    while lo < last:
        hi = min(lo + width, last)
        stage = [m for m in members if m.first < hi and m.end > lo]
        if stage:
            pools, time_off = _read_stage(conn, proof, stage, query, lo, hi + after, now)
            # In the order of (first possible start in the stage, id): once `limit` slots are in hand, a
            # clinic that comes after the limit-th slot's (start, clinic) cannot beat it, nor can any
            # clinic after it, nor any later stage.
            stage.sort(key=lambda m: (max(m.first, lo), m.rank))
            for member in stage:
                if len(found) >= query.limit:
                    found.sort(key=lambda f: (f[0], f[1]))
                    del found[query.limit :]
                    if (max(member.first, lo), member.rank) > found[-1][:2]:
                        break
                search_ = _stage_search(db, member, pools, time_off, treatment_type, timing, query, lo, hi, after,
                                        now, allows)  # fmt: skip
                result = find_slots(search_)
                found += [(slot.starts_at, member.rank, slot, (member, search_)) for slot in result.slots]
                if result.refusal is not None:  # the clinic's earliest refusal, as its whole search's
                    refusals.setdefault(member.rank, result.refusal)
        if len(found) >= query.limit:  # every slot of a later stage starts after these
            break
        lo, width = hi, width * 2
    found.sort(key=lambda f: (f[0], f[1]))
    slots = _assign(conn, found[: query.limit], previous, now, ordered)
    return slots, (refusals[min(refusals)] if refusals and not slots else None)


def _reach(timing: Timing) -> timedelta:
    """How long after its start a slot still claims something: the window's claims reach that far."""
    return timedelta(
        minutes=timing.numbing_minutes + timing.procedure_minutes + timing.aftercare_minutes + timing.turnover_minutes
    )


def _stage_search(
    db: Session,
    member: _Member,
    pools: dict[str, dict[str, list[Interval]]],
    time_off: dict[str, list[Interval]],
    treatment_type: TreatmentFacts,
    timing: Timing,
    query: Query,
    lo: datetime,
    hi: datetime,
    after: timedelta,
    now: datetime,
    allows: patients.PatientFacts | None,
) -> Search:
    """The engine's input for one clinic's starts in [lo, hi) within its window: as _build's, with the
    hours and claims of the stage only (a start needs nothing before itself), and the practitioners
    in the order of _preference if it was read before the stages, else by id (_assign orders them
    for the starts that make the answer)."""
    setup, window = member.setup, member.window
    s, e = max(lo, member.start), min(hi, member.end)
    clinic_hours = _clinic_open(setup, s, e + after)
    hours = [
        PractitionerHours(
            p, subtract(intersect(clinic_hours, _weekly(setup, p, shifts, s, e + after)), time_off.get(p, []))
        )
        for p, shifts in member.order or window.practitioners
    ]
    if member.cap is not None:  # the days at the policy's daily cap, over the whole window as _search_clinic's
        if member.capped is None:
            zone = ZoneInfo(member.clinic.timezone)
            member.capped = policies.capped_days(db, member.cap, member.start, member.end, zone, now)
        for practitioner in hours:
            practitioner.open[:] = subtract(practitioner.open, member.capped.get(practitioner.practitioner_id, []))
    busy: dict[str, list[Interval]] = {}
    for pool in _pools_of(member, query):
        busy.update(pools.get(pool, {}))
    clinic = member.clinic
    return Search(
        clinic_id=clinic.id,
        zone=setup.zone,
        treatment_type_id=treatment_type.id,
        timing=timing,
        start=s,
        end=e,
        practitioners=hours,
        rooms=list(window.rooms),
        busy=busy,
        numbing_seats=clinic.numbing_area_capacity,
        devices=clinic.device_count,
        patient_id=query.patient_id,
        patient_allows=patients.rules_at(allows, clinic.timezone) if allows else None,
        step_minutes=member.settings.grid_minutes,
        order=query.order,
        limit=query.limit,
    )


def _pools_of(member: _Member, query: Query) -> list[str]:
    """What a clinic's claims count against (Claim.pool): its practitioners, rooms, the patient, its pools."""
    keys = [claim_key("practitioner", p) for p, _ in member.window.practitioners]
    keys += [claim_key("room", r) for r in member.window.rooms]
    if query.patient_id is not None:
        keys.append(claim_key("patient", query.patient_id))
    return [*keys, claim_key("numbing", member.clinic.id), claim_key("device", member.clinic.id)]


def _weekly(
    setup: availability_cache.ClinicSetup, who: object, shifts: tuple[Shift, ...], start: datetime, end: datetime
) -> list[Interval]:
    """intervals.weekly(shifts, start, end) (`who` names the shifts: "" the clinic's hours, else a practitioner),
    kept in the set-up by the local dates it expands, which are what decides it: a warm worker
    expands a day's hours once, not once per search and stage."""
    first, last = local_dates(start, end, ZoneInfo(setup.zone))
    if any(shift.zone != setup.zone for shift in shifts):  # pragma: no cover - the set-up gives its zone
        return weekly(list(shifts), start, end)
    cache = setup.derived.setdefault("weekly", {})
    key = (who, first, last)
    found = cache.get(key)
    if found is None:
        if len(cache) > _WEEKLY_KEPT:  # days go by: what is kept stays small
            cache.clear()
        found = cache[key] = weekly(list(shifts), start, end)
    return intersect(found, [(start, end)])


_WEEKLY_KEPT = 400  # per set-up: a day of searches needs a few dozen; a few hundred KB at most


def _clinic_open(setup: availability_cache.ClinicSetup, start: datetime, end: datetime) -> list[Interval]:
    """intervals.clinic_open for the set-up, from _weekly and the closures expanded once."""
    closed = setup.derived.get("closed")
    if closed is None:
        closed = setup.derived["closed"] = closed_days(setup.closures, setup.zone)
    return subtract(_weekly(setup, "", setup.opening, start, end), closed)


def _read_stage(
    conn: Connection, proof: _Proof, stage: list[_Member], query: Query, lo: datetime, upper: datetime, now: datetime
) -> tuple[dict[str, dict[str, list[Interval]]], dict[str, list[Interval]]]:
    """One statement for a stage of every clinic in it: live claims that start before `upper` and end
    after `lo`, by pool then resource; time off and external busy times by practitioner; and the
    organization's stamp (and the API key), which prove the catalog current."""
    pools = sorted({pool for member in stage for pool in _pools_of(member, query)})
    practitioners = sorted({p for member in stage for p, _ in member.window.practitioners})
    params = {
        "organization_id": proof.org,
        "pools": pools,
        "practitioners": practitioners,
        "lower": lo - LONGEST_CLAIM,
        "upper": upper,
        "start": lo,
        "now": now,
        "key_id": proof.key.key_id if proof.key is not None else None,
    }
    by_pool: dict[str, dict[str, list[Interval]]] = {}
    time_off: dict[str, list[Interval]] = {}
    version: int | None = None
    policy: str | None = None
    combine = datetime.combine
    for kind, text, pool, starts_at, ends_at in conn.execute(_stage_statement(conn), params).all():
        if kind == 0:
            version = int(text)
        elif kind == 3:
            policy = text
        elif kind == 4:
            if proof.key is not None:
                proof.key.live = True
        else:
            interval = (combine(starts_at.date(), starts_at.time(), UTC), combine(ends_at.date(), ends_at.time(), UTC))
            into = by_pool.setdefault(pool, {}) if kind == 1 else time_off
            into.setdefault(text, []).append(interval)
    proof.check(None if version is None else (version, policy))
    return by_pool, time_off


_STAGE_STATEMENTS: dict[str, sa.CompoundSelect] = {}


def _stage_statement(conn: Connection) -> sa.CompoundSelect:
    """(kind, text, pool, start, end) rows, as _window_statement's (kinds 0 to 4) with each claim's pool,
    for any list of pools and practitioners (expanding parameters: one compiled statement)."""
    dialect = conn.dialect.name
    statement = _STAGE_STATEMENTS.get(dialect)
    if statement is not None:
        return statement
    lower: sa.BindParameter[Any] = sa.bindparam("lower")
    upper: sa.BindParameter[Any] = sa.bindparam("upper")
    start: sa.BindParameter[Any] = sa.bindparam("start")
    now: Any = sa.bindparam("now")
    nothing = sa.cast(sa.null(), sa.DateTime())
    no_text = sa.cast(sa.null(), sa.String())
    organization = Organization.id == sa.bindparam("organization_id")
    selects: list[sa.Select] = [
        sa.select(sa.literal_column("0"), sa.cast(Organization.setup_version, sa.String), no_text, nothing, nothing)
        .where(organization),
        sa.select(sa.literal_column("3"), availability_cache.policy_text(), no_text, nothing, nothing)
        .where(organization),
        sa.select(sa.literal_column("4"), ApiKey.id, no_text, nothing, nothing)
        .where(key_live(sa.bindparam("key_id", type_=sa.String))),
        sa.select(
            sa.literal_column("1"), Claim.resource, Claim.pool, _naive_utc(Claim.starts_at, conn),
            _naive_utc(Claim.ends_at, conn),
        ).where(
            _any_of(Claim.pool, "pools", dialect),
            Claim.starts_at >= lower, Claim.starts_at < upper, Claim.ends_at > start, Claim.live(now),
        ),
    ]  # fmt: skip
    selects += [
        sa.select(
            sa.literal_column("2"), model.practitioner_id, no_text, _naive_utc(model.starts_at, conn),
            _naive_utc(model.ends_at, conn),
        ).where(
            _any_of(model.practitioner_id, "practitioners", dialect), model.starts_at < upper,
            model.ends_at > start,
        )
        for model in (TimeOff, ExternalBusy)
    ]  # fmt: skip
    statement = _STAGE_STATEMENTS[dialect] = sa.union_all(*selects)
    return statement


def _any_of(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the list bound as `name`: on PostgreSQL one array parameter (`= ANY`, an
    index range per value as IN's), since a chain's few hundred keys as as many parameters cost more
    to send than to look up; elsewhere an expanding IN."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(sa.String)))
    return column.in_(sa.bindparam(name, expanding=True, type_=sa.String))


def _assign(
    conn: Connection,
    found: list[tuple[datetime, int, Slot, tuple[_Member, Search]]],
    previous: str | None,
    now: datetime,
    ordered: bool,
) -> list[Slot]:
    """The answer's slots with the practitioner each would have in its clinic's whole-window search:
    unless the practitioners were ordered before the stages, the stage searches that gave them run
    again, over the answer's starts only, with their practitioners in the order of _preference."""
    searches = {id(search_): (member, search_) for _, _, _, (member, search_) in found
                if len(search_.practitioners) > 1}  # fmt: skip
    if ordered or not searches:
        return [slot for _, _, slot, _ in found]
    loads = _loads(conn, _practitioners_by_window([member for member, _ in searches.values()]), now)
    again: dict[int, dict[datetime, Slot]] = {}
    for key, (member, search_) in searches.items():
        window = (member.start, member.end)
        ordered_hours = sorted(
            search_.practitioners, key=lambda h: _load_key(previous, loads[window], h.practitioner_id)
        )
        if [h.practitioner_id for h in ordered_hours] != [h.practitioner_id for h in search_.practitioners]:
            # A search's slots in the answer are its first ones: the same starts (they do not depend on
            # the order), each with its practitioner in that order.
            starts = [at for at, _, _, (_, other) in found if other is search_]
            narrower = replace(search_, practitioners=ordered_hours, start=starts[0], end=starts[-1] + _TICK)
            again[key] = {slot.starts_at: slot for slot in find_slots(narrower).slots}
    return [again[id(staged[1])][at] if id(staged[1]) in again else slot for at, _, slot, staged in found]


_TICK = timedelta(microseconds=1)


def _practitioners_by_window(members: Iterable[_Member]) -> dict[tuple[datetime, datetime], set[str]]:
    windows: dict[tuple[datetime, datetime], set[str]] = {}
    for member in members:
        windows.setdefault((member.start, member.end), set()).update(p for p, _ in member.window.practitioners)
    return windows


def _loads(
    conn: Connection, windows: dict[tuple[datetime, datetime], set[str]], now: datetime
) -> dict[tuple[datetime, datetime], dict[str, timedelta]]:
    """Per window [start, end), each practitioner's time claimed within it, exactly as _preference
    counts it from the claims _build reads: one sum per practitioner on PostgreSQL (an interval, exact
    to the microsecond); SQLite has no interval type, so it sends the claims and Python sums them."""
    postgresql = conn.dialect.name == "postgresql"
    selects: list[sa.Select] = []
    for i, ((start, end), practitioners) in enumerate(windows.items()):
        where = (
            Claim.pool.in_([claim_key("practitioner", p) for p in sorted(practitioners)]),
            Claim.starts_at >= start - LONGEST_CLAIM,  # the bounds of _build's read, and s < end
            Claim.starts_at < end,
            Claim.ends_at > start,
            Claim.live(now),
        )
        if postgresql:
            claimed = sa.func.least(Claim.ends_at, end) - sa.func.greatest(Claim.starts_at, start)
            selects.append(
                sa.select(sa.literal(i), Claim.resource, sa.func.sum(claimed, type_=sa.Interval()), sa.null())
                .where(*where)
                .group_by(Claim.resource)
            )
        else:
            selects.append(
                sa.select(
                    sa.literal(i), Claim.resource, _naive_utc(Claim.starts_at, conn), _naive_utc(Claim.ends_at, conn)
                ).where(*where)
            )
    keys = list(windows)
    loads: dict[tuple[datetime, datetime], dict[str, timedelta]] = {window: {} for window in keys}
    for i, resource, first, second in conn.execute(sa.union_all(*selects)).all():
        window = keys[i]
        if postgresql:
            loads[window][resource] = first
        else:
            start, end = window
            s, e = first.replace(tzinfo=UTC), second.replace(tzinfo=UTC)
            loads[window][resource] = loads[window].get(resource, timedelta()) + min(e, end) - max(s, start)
    return loads


def _first_open(
    setup: availability_cache.ClinicSetup,
    conn: Connection,
    treatment_type: TreatmentFacts,
    query: Query,
    start: datetime,
    end: datetime,
) -> datetime | None:
    """The first instant in [start, end) when the clinic is open and a practitioner the search
    considers works there (None: never): no slot of the clinic starts earlier. Looked for a day at a
    time: most clinics open within the first."""
    practitioners = _window_of(setup, conn, treatment_type, query).practitioners
    if not practitioners:
        return None
    lo = start
    while lo < end:
        hi = min(lo + _DAY, end)
        clinic_hours = _clinic_open(setup, lo, hi)
        if clinic_hours:
            # Everyone's shifts as one: kept like _weekly's, by the shape's practitioners (their tuple
            # lives as long as the set-up that keeps it).
            everyone = tuple(shift for _, shifts in practitioners for shift in shifts)
            both = intersect(clinic_hours, _weekly(setup, ("anyone", id(practitioners)), everyone, lo, hi))
            if both:
                return both[0][0]
        lo = hi
    return None


_DAY = timedelta(days=1)


def _policy_bounds(
    catalog: availability_cache.Catalog,
    actor: booking_policy.Actor | None,
    clinic: ClinicFacts,
    treatment_type: TreatmentFacts,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
) -> tuple[datetime, datetime, Settings, int | None] | DomainError:
    """The clinic's window, grid and daily session cap under the actor's effective policy
    (booking/domain/policy.py), or why a frontend may book nothing there."""
    if actor is None or not actor.bound:
        return start, end, settings, None
    # policies.resolve's layers, from the catalog (the organization's policy text is in its stamp)
    effective = booking_policy.effective(
        actor.defaults, catalog.organization_policy, clinic.booking_policy, treatment_type.booking_policy
    )
    if actor.frontend:
        try:
            booking_policy.check_online(effective, True)
        except DomainError as refused:
            return refused
    zone = ZoneInfo(clinic.timezone)
    first, horizon_end = booking_policy.window(effective, now, zone)
    c_start, c_end = max(query.start, first), min(query.end, horizon_end)
    return (
        c_start,
        c_end,
        replace(settings, grid_minutes=effective.grid_minutes),
        (effective.max_sessions_per_practitioner_per_day),
    )


def _evening_key(clinics):
    def key(slot: Slot):
        return evening_first(slot.starts_at, ZoneInfo(clinics[slot.clinic_id].timezone))

    return key


def _build(
    db: Session,
    clinic: ClinicFacts,
    treatment_type: TreatmentFacts,
    query: Query,
    start: datetime,
    end: datetime,
    now: datetime,
    settings: Settings,
    allows: patients.PatientFacts | None,
    previous: str | None,
    *,
    proof: _Proof,
) -> Search:
    """The engine's input for one clinic: the clinic's set-up from the worker's cache, and what
    changes by the minute (claims, time off, external busy times) in one statement with the
    organization's stamp, which proves the search's catalog and that set-up current (or the search
    starts again)."""
    conn = db.connection()  # Core rows: plain tuples, without the ORM's per-row work
    timing = Timing.of(treatment_type)
    # A slot starting before `end` claims nothing past end + its visit; a claim that ends after
    # `start` started at most LONGEST_CLAIM before it (the index range's lower bound).
    after = _reach(timing)
    params = {
        "organization_id": clinic.organization_id,
        "lower": start - LONGEST_CLAIM,
        "upper": end + after,
        "start": start,
        "now": now,
        "patient": claim_key("patient", query.patient_id) if query.patient_id else None,
        "key_id": proof.key.key_id if proof.key is not None else None,
    }
    setup = proof.setup(clinic)
    window = _window_of(setup, conn, treatment_type, query)
    stamp, busy, time_off, key_live = _read_window(conn, window.statement, params)
    if key_live and proof.key is not None:
        proof.key.live = True
    proof.check(stamp)
    # The clinic's hours and closures are the same for every practitioner: expanded once.
    clinic_hours = clinic_open(
        opening=list(setup.opening), closures=setup.closures, zone=setup.zone, start=start, end=end + after
    )
    hours = [
        PractitionerHours(
            p,
            staff_open(clinic_hours, working=list(shifts), time_off=time_off.get(p, []), start=start, end=end + after),
        )
        for p, shifts in window.practitioners
    ]
    hours.sort(key=_preference(previous, busy, start, end))
    return Search(
        clinic_id=clinic.id,
        zone=setup.zone,
        treatment_type_id=treatment_type.id,
        timing=timing,
        start=start,
        end=end,
        practitioners=hours,
        rooms=list(window.rooms),
        busy=busy,
        numbing_seats=clinic.numbing_area_capacity,
        devices=clinic.device_count,
        patient_id=query.patient_id,
        patient_allows=patients.rules_at(allows, clinic.timezone) if allows else None,  # in its clinic's zone
        step_minutes=settings.grid_minutes,
        order=query.order,
        limit=query.limit,
    )


@dataclass(frozen=True)
class _Window:
    """What one shape of search (treatment type, practitioner, room, patient or not) derives from a
    clinic's set-up: its practitioners and rooms, and the statement reading its window."""

    practitioners: tuple[tuple[str, tuple[Shift, ...]], ...]  # qualified, by id
    rooms: tuple[str, ...]  # with the required capability, by id
    statement: sa.CompoundSelect


def _window_of(
    setup: availability_cache.ClinicSetup, conn: Connection, treatment_type: TreatmentFacts, query: Query
) -> _Window:
    shape = (treatment_type.id, treatment_type.required_capability, query.practitioner_id, query.room_id,
             query.patient_id is not None, query.online_only, conn.dialect.name)  # fmt: skip
    window = setup.derived.get(shape)
    if window is None:
        capability = treatment_type.required_capability
        practitioners = tuple(
            (p, staff.shifts)
            for p, staff in setup.staff.items()
            if treatment_type.id in staff.treatment_type_ids
            and (not query.practitioner_id or p == query.practitioner_id)
            and (not query.online_only or staff.bookable_online)
        )
        rooms = tuple(
            room_id
            for room_id, capabilities in setup.rooms
            if (not capability or capability in capabilities) and (not query.room_id or room_id == query.room_id)
        )
        resources: list[str | sa.BindParameter] = [claim_key("practitioner", p) for p, _ in practitioners]
        resources += [claim_key("room", r) for r in rooms]
        if query.patient_id is not None:
            resources.append(sa.bindparam("patient", type_=sa.String))
        # Pool units ('numbing:<clinic>#2') by their pool: with the single resources, one equality
        # each and the time bounds, a tight range on ix_claims_pool_starts whatever the history.
        pools = [claim_key("numbing", setup.clinic_id), claim_key("device", setup.clinic_id)]
        window = _Window(practitioners, rooms, _window_statement(conn, resources, pools, [p for p, _ in practitioners]))
        setup.derived[shape] = window
    return window


def claims_touching(
    resources: list, pools: list[str], lower: Any, upper: Any, after: Any, now: Any
) -> ColumnElement[bool]:
    """Live claims on `resources` or on the units of `pools` that start in [lower, upper) and end after
    `after`: the one predicate of the availability window (values or bind parameters alike)."""
    return sa.and_(
        Claim.pool.in_([*resources, *pools]),
        Claim.starts_at >= lower,
        Claim.starts_at < upper,
        Claim.ends_at > after,
        Claim.live(now),
    )


def _window_statement(
    conn: Connection, resources: list, pools: list[str], practitioner_ids: list[str]
) -> sa.CompoundSelect:
    """(kind, text, start, end) rows: kind 0 the organization's setup_version (as text), 3 its
    booking policy (as text), 4 the API key `key_id` if it is live, 1 a claim (resource), 2 a
    practitioner's time off or external busy time (practitioner id); instants naive UTC."""
    # Untyped: each takes the type of the column it is compared with (models.UTCDateTime).
    lower: sa.BindParameter[Any] = sa.bindparam("lower")
    upper: sa.BindParameter[Any] = sa.bindparam("upper")
    start: sa.BindParameter[Any] = sa.bindparam("start")
    now: sa.BindParameter[Any] = sa.bindparam("now")
    nothing = sa.cast(sa.null(), sa.DateTime())
    version: sa.Select = sa.select(
        sa.literal_column("0").label("kind"),
        sa.cast(Organization.setup_version, sa.String).label("text"),
        nothing.label("starts_at"),
        nothing.label("ends_at"),
    ).where(Organization.id == sa.bindparam("organization_id"))
    policy: sa.Select = sa.select(sa.literal_column("3"), availability_cache.policy_text(), nothing, nothing).where(
        Organization.id == sa.bindparam("organization_id")
    )
    key: sa.Select = sa.select(sa.literal_column("4"), ApiKey.id, nothing, nothing).where(
        key_live(sa.bindparam("key_id", type_=sa.String))
    )
    claims: sa.Select = sa.select(
        sa.literal_column("1"), Claim.resource, _naive_utc(Claim.starts_at, conn), _naive_utc(Claim.ends_at, conn)
    ).where(claims_touching(resources, pools, lower, upper, start, now))
    # Time off and external calendars' busy times (booking/integrations/external_calendars.py) block alike.
    unavailable: list[sa.Select] = [
        sa.select(
            sa.literal_column("2"),
            model.practitioner_id,
            _naive_utc(model.starts_at, conn),
            _naive_utc(model.ends_at, conn),
        ).where(model.practitioner_id.in_(practitioner_ids), model.starts_at < upper, model.ends_at > start)
        for model in (TimeOff, ExternalBusy)
    ]
    return sa.union_all(version, policy, key, claims, *unavailable)


def _read_window(
    conn: Connection, statement: sa.CompoundSelect, params: dict
) -> tuple[availability_cache.Stamp | None, dict[str, list[Interval]], dict[str, list[Interval]], bool]:
    version: int | None = None
    policy: str | None = None
    key_live = False
    found: tuple[dict[str, list[Interval]], dict[str, list[Interval]]] = ({}, {})
    busy, time_off = found
    combine = datetime.combine
    for kind, text, starts_at, ends_at in conn.execute(statement, params).all():  # all(): not row by row
        if kind == 0:
            version = int(text)
            continue
        if kind == 3:
            policy = text
            continue
        if kind == 4:
            key_live = True
            continue
        # Made aware with combine(): about five times cheaper than .replace(tzinfo=) on CPython 3.11.
        (busy if kind == 1 else time_off).setdefault(text, []).append(
            (combine(starts_at.date(), starts_at.time(), UTC), combine(ends_at.date(), ends_at.time(), UTC))
        )
    return (None if version is None else (version, policy)), busy, time_off, key_live


def _naive_utc(
    column: ColumnElement[datetime] | QueryableAttribute[datetime], connection: Connection
) -> ColumnElement[datetime]:
    """An aware column read as naive UTC, without models.UTCDateTime's per-value hook.

    SQLite stores naive UTC; on PostgreSQL timezone('UTC', ...) turns the timestamptz into
    it, which psycopg reads about three times faster than an aware value.
    """
    if connection.dialect.name == "postgresql":
        column = sa.func.timezone("UTC", column)
    return sa.type_coerce(column, sa.DateTime())


def _preference(
    previous: str | None, busy: dict[str, list[Interval]], start: datetime, end: datetime
) -> Callable[[PractitionerHours], tuple[bool, timedelta, str]]:
    """Continuity of care first (the patient's last practitioner), then the least loaded: the least
    time claimed within the window [start, end), then by id."""
    loads: dict[str, timedelta] = {}
    for resource, claimed in busy.items():
        if resource.startswith("practitioner:"):
            # timedelta sums are exact (a float sum's last bit would depend on the rows' order)
            loads[resource] = sum((min(e, end) - max(s, start) for s, e in claimed if s < end and e > start),
                                  timedelta())  # fmt: skip
    return lambda hours: _load_key(previous, loads, hours.practitioner_id)


def _load_key(
    previous: str | None, loads: Mapping[str, timedelta], practitioner_id: str
) -> tuple[bool, timedelta, str]:
    """_preference's key from each practitioner's load (by claim key; none: nothing claimed)."""
    return (
        practitioner_id != previous,
        loads.get(claim_key("practitioner", practitioner_id), _NOTHING),
        practitioner_id,
    )


_NOTHING = timedelta()
