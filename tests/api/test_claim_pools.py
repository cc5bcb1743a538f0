"""A claim's `pool` (migration 0010): the resource without its unit, set by the model for every claim,
and the index that lets the pool queries use their time bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from booking.domain.claims import parse_claim_key
from booking.services import queries
from models import Claim

from ..booking_world import any_time_policy, build_world, patient
from .test_booking import act, ok, practitioner, reschedule, set_devices


def claim_rows(db) -> list[tuple[str, str]]:
    db.expire_all()
    return db.execute(sa.select(Claim.resource, Claim.pool).order_by(Claim.id)).all()


def test_the_model_sets_the_pool_from_the_resource():
    unit = Claim(resource="numbing:cln_x_1#12")
    assert unit.pool == "numbing:cln_x_1"
    assert Claim(resource="room:rm_abc123").pool == "room:rm_abc123"  # a single resource is its own pool
    unit.resource = "device:cln_y#3"  # a claim moved to another unit counts against that unit's pool
    assert unit.pool == "device:cln_y"


def test_every_way_of_claiming_sets_the_pool(admin, clock, db):
    """Booking, holding, booking a hold, rescheduling and re-claiming devices (a count set on the clinic)."""
    w = build_world(admin, clock, numbing_area_capacity=2)
    w.consulted()
    booked = w.book()
    other = patient(w)
    p2 = practitioner(w)
    held = w.hold(patient_id=other["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(day=1))
    ok(w.caller.post("/v1/appointments", json={"hold_id": held["id"]}), 201)
    third = patient(w)
    w.hold(patient_id=third["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(day=2))
    ok(reschedule(w, booked, starts_at=w.at(day=3)))
    ok(set_devices(w, 2))  # gives every live booking and hold its device unit
    rows = claim_rows(db)
    pooled = {parse_claim_key(r).kind for r, _ in rows if parse_claim_key(r).unit is not None}
    assert pooled == {"numbing", "device"}
    assert {"practitioner", "room", "patient"} <= {parse_claim_key(r).kind for r, _ in rows}
    assert [(r, p) for r, p in rows if p != parse_claim_key(r).resource] == []
    assert {p for r, p in rows if "#" in r} == {f"numbing:{w.clinic['id']}", f"device:{w.clinic['id']}"}


def test_the_demo_seed_sets_the_pool(app, db, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    rows = claim_rows(db)
    assert rows and [(r, p) for r, p in rows if p != parse_claim_key(r).resource] == []


def test_a_pool_at_capacity_refuses_a_booking_and_frees_once_cancelled(admin, clock, db):
    """The conflict check finds the pool's units by their pool: one numbing seat, two patients."""
    w = build_world(admin, clock, numbing_area_capacity=1)
    any_time_policy(admin)  # 10:10: the pool's refusal, not the grid's
    w.consulted()
    first = w.book()
    p2, other = practitioner(w), patient(w)
    target = w.slot(
        patient_id=other["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=10, minute=10)
    )
    response = w.caller.post("/v1/appointments", json=target)
    assert response.status_code == 409 and {c["resource"] for c in response.get_json()["conflicts"]} == {"numbing"}
    ok(act(w, first, "cancel", reason="patient_request"))
    ok(w.caller.post("/v1/appointments", json=target), 201)


# =========================================================================== the plan on PostgreSQL


def _explain(db, query, *options: str) -> str:
    compiled = query.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(
        row[0] for row in db.execute(sa.text(f"EXPLAIN ({', '.join(('COSTS OFF', *options))}) {compiled}"))
    )


def _add_history(db, org: str, start: datetime, days: int) -> None:
    """Numbing seat claims every half hour for `days` days from `start`, on three clinics' pools."""
    # One Core INSERT of many rows (tens of thousands through the ORM took most of a minute).
    db.execute(
        sa.insert(Claim),
        [
            Claim.row(
                organization_id=org,
                resource=f"numbing:cln_pool_{clinic}#{1 + n % 2}",
                starts_at=start + timedelta(minutes=30 * n),
                ends_at=start + timedelta(minutes=30 * n + 25),
            )
            for clinic in range(3)
            for n in range(days * 48)
        ],
    )
    db.execute(sa.text("ANALYZE claims"))


@pytest.fixture
def history(backend, admin, db):
    """Four months of a pool's claims on PostgreSQL, planner statistics fresh: (org, its first start)."""
    if backend[0] != "postgresql":
        pytest.skip("EXPLAIN plans are PostgreSQL's")
    start = datetime(2026, 5, 1, tzinfo=UTC)
    _add_history(db, admin.organization_id, start, 120)
    return admin.organization_id, start


def _buffers(plan: str) -> int:
    """Shared buffers the execution touched (the top node's count, planning excluded)."""
    return int(next(line for line in plan.splitlines() if "Buffers:" in line).split("hit=")[1].split()[0])


def test_the_pool_query_is_an_index_range_bounded_in_time(history, db):
    """The conflict check's predicate (availability's has the same shape): pool and starts_at are the
    index range on ix_claims_pool_starts, so what it reads does not grow with the pool's history."""
    org, start = history
    window = start + timedelta(days=90)
    query = sa.select(Claim.resource).where(
        queries._claims_on(["numbing:cln_pool_1", "room:rm_none"], window, window + timedelta(days=1))
    )
    plan = _explain(db, query)
    assert "ix_claims_pool_starts" in plan and "Seq Scan" not in plan, plan
    conditions = [line for line in plan.splitlines() if "Index Cond" in line]
    assert conditions and all("pool" in c and "starts_at" in c for c in conditions), plan
    assert "~>=~" not in plan and "~~" not in plan, plan  # no prefix range over the whole pool
    before = _buffers(_explain(db, query, "ANALYZE", "BUFFERS", "TIMING OFF"))
    _add_history(db, org, start - timedelta(days=150), 150)  # five months more of the same pools, before the window
    after = _buffers(_explain(db, query, "ANALYZE", "BUFFERS", "TIMING OFF"))
    assert after <= before + 3, (before, after)
