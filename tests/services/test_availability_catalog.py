"""The worker's catalog (booking/services/availability_cache.py): a search names its treatment
type, clinic, practitioner and room against it and bounds its window by the organization's,
clinic's and treatment type's booking policies read from it, without a statement of its own; the
stamp read with the window proves it current. Two engines on one committed database play two
workers: whatever one commits binds the other's next search at once, the 422 of an id gone or
another organization's included, and a search that reads no window still checks the stamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput
from booking.domain.policy import Actor
from booking.services import availability_cache
from booking.services.availability_search import Query, search
from models import Clinic, Organization, Practitioner, Room, TreatmentType, make_engine, make_sessionmaker
from models.staff import practitioner_treatment_types

from ..scaffold import fresh_database
from .test_availability_fast_path import SETTINGS, WEEKS, build

NOW = datetime(2026, 12, 1, tzinfo=UTC)
STAFF = Actor(key_id="key", channel="staff")
WORLD = {
    "clinics": [
        {"zone": "Europe/London", "seats": 0, "devices": None, "rooms": [["needling"]],
         "practitioners": [{"qualified": True, "shifts": [(0, 540, 1020)]}],
         "opening": [(0, 480, 1080)], "closures": []},
    ] * 2,
    "kind": "microneedling", "week": WEEKS[0], "claims": [], "time_off": [],
}  # fmt: skip


@pytest.fixture(scope="module")
def workers(backend, tmp_path_factory):
    """Two engines (two workers' pools, each with its own cache) on one committed database."""
    name, url = backend
    with fresh_database(name, url, tmp_path_factory.mktemp("catalog"), "catalog_workers") as fresh:
        first, second = make_engine(fresh), make_engine(fresh)
        try:
            yield make_sessionmaker(first), make_sessionmaker(second)
        finally:
            first.dispose()
            second.dispose()


@pytest.fixture(autouse=True)
def _now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _world(writer) -> dict:
    with writer() as db:
        built = build(db, WORLD)
        built["rooms"] = list(db.scalars(sa.select(Room.id).where(Room.clinic_id == built["clinics"][0])))
        db.commit()
    return built


def _query(built: dict, **fields) -> Query:
    start = built["origin"]
    names = {
        "treatment_type_id": built["treatment"],
        "start": start,
        "end": start + timedelta(days=1),
        "clinic_id": built["clinics"][0],
        **fields,
    }
    return Query(**names)


def _search(maker, built: dict, query: Query, actor: Actor | None = None):
    with maker() as db:
        return search(db, built["org"], query, SETTINGS, actor)[0]


def _cold(maker, built: dict, query: Query, actor: Actor | None = None):
    """The answer of a worker that has cached nothing of the organization."""
    with maker() as db:
        availability_cache.cache_for(db.connection()).forget(built["org"])
        return search(db, built["org"], query, SETTINGS, actor)[0]


def _archive(db: Session, model, object_id: str) -> None:
    db.get_one(model, object_id).archived_at = NOW


GONE = {
    "treatment_type_id": lambda built: (TreatmentType, built["treatment"], {}),
    "clinic_id": lambda built: (Clinic, built["clinics"][0], {}),
    "practitioner_id": lambda built: (Practitioner, built["practitioners"][0], {}),
    "room_id": lambda built: (Room, built["rooms"][0], {}),
}


@pytest.mark.parametrize("field", sorted(GONE))
@pytest.mark.parametrize("window", ["week", "past"])
def test_an_id_archived_by_one_worker_is_unknown_to_the_next_search_of_another(workers, field, window):
    """'past': a window already over reads no claims, so no stamp comes with a window read: the
    search reads the stamp before it answers (an empty answer would hide the 422)."""
    writer, reader = workers
    built = _world(writer)
    model, object_id, _ = GONE[field](built)
    query = _query(built, **{field: object_id})
    if window == "past":
        query = _query(built, **{field: object_id}, start=NOW - timedelta(days=2), end=NOW - timedelta(days=1))
    answer = _search(reader, built, query)
    assert (answer == []) == (window == "past")
    assert availability_cache.cache_for(reader().connection()).catalog(built["org"]) is not None
    with writer() as db:
        _archive(db, model, object_id)
        db.commit()
    with pytest.raises(InvalidInput) as refused:
        _search(reader, built, query)
    assert field in refused.value.errors


def test_a_treatment_type_made_by_one_worker_is_known_to_the_next_search_of_another(workers):
    writer, reader = workers
    built = _world(writer)
    assert _search(reader, built, _query(built))  # the catalog cached without the new type
    with writer() as db:
        source = db.get_one(TreatmentType, built["treatment"])
        made = TreatmentType(
            **{c.key: getattr(source, c.key) for c in sa.inspect(TreatmentType).column_attrs if c.key != "id"}
        )
        made.name = "New"
        db.add(made)
        db.flush()
        qualified = [{"practitioner_id": p, "treatment_type_id": made.id} for p in built["practitioners"]]
        db.execute(sa.insert(practitioner_treatment_types), qualified)
        db.commit()
        new = made.id
    query = _query(built, treatment_type_id=new)
    assert _search(reader, built, query) == _cold(reader, built, query) != []


POLICIES = ["organization", "clinic", "treatment_type"]


@pytest.mark.parametrize("level", POLICIES)
def test_a_policy_set_by_one_worker_binds_the_next_search_of_another(workers, level):
    """A grid of an hour instead of 15 minutes, set on the organization (its own column, which no
    setup_version trigger watches: the stamp carries it), a clinic or the treatment type."""
    writer, reader = workers
    built = _world(writer)
    query = _query(built)
    before = _search(reader, built, query, STAFF)
    assert {s.starts_at.minute for s in before} > {0}
    with writer() as db:
        owner = {
            "organization": lambda: db.get_one(Organization, built["org"]),
            "clinic": lambda: db.get_one(Clinic, built["clinics"][0]),
            "treatment_type": lambda: db.get_one(TreatmentType, built["treatment"]),
        }[level]()
        owner.booking_policy = {"grid_minutes": 60}
        db.commit()
    after = _search(reader, built, query, STAFF)
    assert after == _cold(reader, built, query, STAFF)
    assert after and {s.starts_at.minute for s in after} == {0}
    with writer() as db:  # and cleared again
        db.execute(sa.update(Organization).where(Organization.id == built["org"]).values(booking_policy=None))
        db.commit()
    if level == "organization":
        assert _search(reader, built, query, STAFF) == before


def test_another_organizations_ids_are_unknown_with_both_catalogs_cached(workers):
    writer, reader = workers
    ours, theirs = _world(writer), _world(writer)
    assert _search(reader, ours, _query(ours)) and _search(reader, theirs, _query(theirs))
    for field, pick in GONE.items():
        _, object_id, _ = pick(theirs)
        with pytest.raises(InvalidInput) as refused:
            _search(reader, ours, _query(ours, **{field: object_id}))
        assert field in refused.value.errors
    chain = _search(reader, ours, _query(ours, clinic_id=None, limit=500))
    assert chain and {s.clinic_id for s in chain} <= set(ours["clinics"])


def test_a_refusal_made_from_an_outdated_catalog_is_made_again_from_the_current_one(workers):
    """The treatment type archived by another worker and an unknown patient: the outdated catalog
    gets as far as the patient's 422; the search checks the stamp before it refuses, and refuses the
    treatment type as a worker with nothing cached would."""
    writer, reader = workers
    built = _world(writer)
    query = _query(built, patient_id="pat_nobody")
    with pytest.raises(InvalidInput) as refused:
        _search(reader, built, query)
    assert "patient_id" in refused.value.errors
    with writer() as db:
        _archive(db, TreatmentType, built["treatment"])
        db.commit()
    with pytest.raises(InvalidInput) as refused:
        _search(reader, built, query)
    assert list(refused.value.errors) == ["treatment_type_id"]
