"""A worker's cache of each clinic's availability set-up, proven current on every search.

The set-up is what a search reads that changes rarely: the clinic's rooms and their capabilities,
the practitioners who work there with what they are qualified for and their weekly shifts there,
the clinic's opening hours and closures. It is cached per engine (a worker's pool onto one
database) and organization, under the organization's `setup_version`: a token database triggers
set to a new value whenever any of those rows is inserted, changed or deleted (migration 0011).

A cached set-up is used only when the token read in the same statement as the window's claims
(availability_search._window) is the one it was read under: a change committed by any worker,
or by a script in psql, shows in the next search everywhere, and a search never mixes a
set-up with claims of a different moment. The token is read before the set-up it labels, so
a change that commits between the two can make the label older than the data (one reload
more), never newer.

Beside the clinics' set-ups, each organization's `Catalog`: its treatment types, clinics,
practitioners and rooms in use (what a search's ids are checked against, for a 422 'Unknown id'
like of_organization's) and the organization's own booking policy, which no trigger watches: it is
read beside the token (`Stamp`) and compared as the database's text. A search uses a catalog as
if current and is answered only once a stamp read in one of its statements equals the catalog's;
otherwise it starts again (availability_search.search).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from booking.domain.weekly import Shift
from models import Clinic, Closure, OpeningHours, Organization, Practitioner, Room, TreatmentType, WorkingHours
from models.staff import practitioner_clinics, practitioner_treatment_types


@dataclass(frozen=True)
class Staff:
    treatment_type_ids: frozenset[str]
    bookable_online: bool  # what a frontend may book (booking policy)
    shifts: tuple[Shift, ...]  # their weekly hours at this clinic, in its zone


@dataclass
class ClinicSetup:
    version: int
    clinic_id: str
    zone: str
    rooms: tuple[tuple[str, frozenset[str]], ...]  # not archived, by id, with their capabilities
    staff: dict[str, Staff]  # practitioners working here, not archived, by id (sorted)
    opening: tuple[Shift, ...]
    closures: tuple[tuple[date, date], ...]
    # What searches derive from it (their resources, their compiled statement), by the search's shape;
    # and its hours expanded day by day (availability_search._weekly).
    derived: dict[Any, Any] = field(default_factory=dict)


# (setup_version, organizations.booking_policy as text): what proves a catalog current.
Stamp = tuple[int, str | None]


class Stale(Exception):
    """A statement of the search read another stamp than its catalog's: start again."""


@dataclass(frozen=True)
class TreatmentFacts:
    """A treatment type in use, as a search reads it (the columns of models.TreatmentType it uses)."""

    id: str
    organization_id: str
    name: str
    kind: str
    numbing_minutes: int
    prep_minutes: int
    procedure_minutes: int
    aftercare_minutes: int
    turnover_minutes: int
    min_interval_days: int | None
    recommended_interval_days: int | None
    max_sessions: int | None
    consultation_valid_days: int | None
    required_capability: str | None
    booking_policy: dict | None


@dataclass(frozen=True)
class ClinicFacts:
    """A clinic in use, as a search reads it (and its answer shows: the zone of its instants)."""

    id: str
    organization_id: str
    name: str
    timezone: str
    numbing_area_capacity: int
    device_count: int | None
    booking_policy: dict | None


@dataclass(frozen=True)
class Catalog:
    stamp: Stamp
    organization_policy: dict | None
    treatment_types: dict[str, TreatmentFacts]
    clinics: dict[str, ClinicFacts]  # by id
    practitioners: frozenset[str]
    rooms: frozenset[str]

    @property
    def version(self) -> int:
        return self.stamp[0]


class SetupCache:
    """organization -> (token, {clinic_id: ClinicSetup}, catalog); the least recently used
    organizations go first."""

    def __init__(self, organizations: int = 2000) -> None:
        self._organizations: OrderedDict[str, tuple[int, dict[str, ClinicSetup]]] = OrderedDict()
        self._catalogs: dict[str, Catalog] = {}
        self._capacity = organizations
        self._lock = threading.Lock()

    def get(self, organization_id: str, clinic_id: str) -> ClinicSetup | None:
        with self._lock:
            entry = self._organizations.get(organization_id)
            if entry is None:
                return None
            self._organizations.move_to_end(organization_id)
            return entry[1].get(clinic_id)

    def put(self, organization_id: str, setup: ClinicSetup) -> None:
        with self._lock:
            self._entry(organization_id, setup.version)[setup.clinic_id] = setup

    def catalog(self, organization_id: str) -> Catalog | None:
        with self._lock:
            return self._catalogs.get(organization_id)

    def put_catalog(self, organization_id: str, catalog: Catalog) -> None:
        with self._lock:
            self._entry(organization_id, catalog.version)
            self._catalogs[organization_id] = catalog

    def _entry(self, organization_id: str, version: int) -> dict[str, ClinicSetup]:
        entry = self._organizations.get(organization_id)
        if entry is None or entry[0] != version:
            entry = (version, {})  # another token: whatever was cached under the old one goes
            self._organizations[organization_id] = entry
            catalog = self._catalogs.get(organization_id)
            if catalog is not None and catalog.version != version:
                del self._catalogs[organization_id]
        self._organizations.move_to_end(organization_id)
        while len(self._organizations) > self._capacity:
            evicted, _ = self._organizations.popitem(last=False)
            self._catalogs.pop(evicted, None)
        return entry[1]

    def forget(self, organization_id: str) -> None:
        with self._lock:
            self._organizations.pop(organization_id, None)
            self._catalogs.pop(organization_id, None)


_caches: weakref.WeakKeyDictionary[Engine, SetupCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_for(connection: Connection) -> SetupCache:
    """The cache of the worker's engine onto this database (each engine, each cache: two apps in one
    process behave as two workers)."""
    engine = connection.engine
    cache = _caches.get(engine)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(engine, SetupCache())
    return cache


def version_query(organization_id: Any) -> sa.Select:
    return sa.select(Organization.setup_version).where(Organization.id == organization_id)


def stamp_query(organization_id: Any) -> sa.Select:
    """(setup_version, booking_policy as text): the organization's stamp."""
    return sa.select(Organization.setup_version, policy_text()).where(Organization.id == organization_id)


def policy_text() -> sa.ColumnElement[str]:
    """The organization's booking policy as the database's text: compared, never parsed but on load."""
    return sa.cast(Organization.booking_policy, sa.Text())


def read_stamp(connection: Connection, organization_id: str) -> Stamp:
    version, text = connection.execute(stamp_query(organization_id)).one()
    return int(version), text


def load_catalog(connection: Connection, organization_id: str) -> Catalog:
    """Read the organization's catalog and the stamp it is current under (read first), and cache it."""
    stamp = read_stamp(connection, organization_id)
    types = TreatmentType.__table__.c
    treatment_types = {
        row.id: TreatmentFacts(**row._asdict())
        for row in connection.execute(
            sa.select(*(types[f.name] for f in fields(TreatmentFacts))).where(
                types.organization_id == organization_id, types.archived_at.is_(None)
            )
        ).all()
    }
    columns = Clinic.__table__.c
    clinics = {
        row.id: ClinicFacts(**row._asdict())
        for row in connection.execute(
            sa.select(*(columns[f.name] for f in fields(ClinicFacts)))
            .where(columns.organization_id == organization_id, columns.archived_at.is_(None))
            .order_by(columns.id)
        ).all()
    }
    practitioners = frozenset(
        connection.execute(
            sa.select(Practitioner.id).where(
                Practitioner.organization_id == organization_id, Practitioner.archived_at.is_(None)
            )
        ).scalars()
    )
    rooms = frozenset(
        connection.execute(
            sa.select(Room.id).where(Room.organization_id == organization_id, Room.archived_at.is_(None))
        ).scalars()
    )
    catalog = Catalog(
        stamp=stamp,
        organization_policy=json.loads(stamp[1]) if stamp[1] is not None else None,
        treatment_types=treatment_types,
        clinics=clinics,
        practitioners=practitioners,
        rooms=rooms,
    )
    cache_for(connection).put_catalog(organization_id, catalog)
    return catalog


def load(connection: Connection, organization_id: str, clinic_id: str, zone: str) -> ClinicSetup:
    """Read the clinic's set-up and the token it is current under (read first), and cache it."""
    version = connection.execute(version_query(organization_id)).scalar_one()
    rooms = tuple(
        (room_id, frozenset(capabilities or ()))
        for room_id, capabilities in connection.execute(
            sa.select(Room.id, Room.capabilities)
            .where(Room.clinic_id == clinic_id, Room.archived_at.is_(None))
            .order_by(Room.id)
        ).all()
    )
    qualified: dict[str, set[str]] = {}
    online: dict[str, bool] = {}
    shifts: dict[str, list[Shift]] = {}
    working_here = sa.select(practitioner_clinics.c.practitioner_id).where(
        practitioner_clinics.c.clinic_id == clinic_id
    )
    for practitioner_id, bookable_online, treatment_type_id in connection.execute(
        sa.select(Practitioner.id, Practitioner.bookable_online, practitioner_treatment_types.c.treatment_type_id)
        .outerjoin(practitioner_treatment_types, practitioner_treatment_types.c.practitioner_id == Practitioner.id)
        .where(
            Practitioner.organization_id == organization_id,
            Practitioner.archived_at.is_(None),
            Practitioner.id.in_(working_here),
        )
    ).all():
        mine = qualified.setdefault(practitioner_id, set())
        online[practitioner_id] = bookable_online
        if treatment_type_id is not None:
            mine.add(treatment_type_id)
    for practitioner_id, weekday, start, end in connection.execute(
        sa.select(
            WorkingHours.practitioner_id, WorkingHours.weekday, WorkingHours.start_minute, WorkingHours.end_minute
        )
        .where(WorkingHours.clinic_id == clinic_id, WorkingHours.practitioner_id.in_(list(qualified)))
        .order_by(WorkingHours.practitioner_id, WorkingHours.weekday, WorkingHours.start_minute)
    ).all():
        shifts.setdefault(practitioner_id, []).append(Shift(weekday, start, end, zone=zone))
    opening = tuple(
        Shift(weekday, start, end, zone=zone)
        for weekday, start, end in connection.execute(
            sa.select(OpeningHours.weekday, OpeningHours.start_minute, OpeningHours.end_minute)
            .where(OpeningHours.clinic_id == clinic_id)
            .order_by(OpeningHours.weekday, OpeningHours.start_minute)
        ).all()
    )
    closures = tuple(
        (first, last)
        for first, last in connection.execute(
            sa.select(Closure.start_date, Closure.end_date).where(Closure.clinic_id == clinic_id)
        ).all()
    )
    setup = ClinicSetup(
        version=version,
        clinic_id=clinic_id,
        zone=zone,
        rooms=rooms,
        staff={p: Staff(frozenset(qualified[p]), online[p], tuple(shifts.get(p, ()))) for p in sorted(qualified)},
        opening=opening,
        closures=closures,
    )
    cache_for(connection).put(organization_id, setup)
    return setup
