"""One hostile webhook receiver delays only its own deliveries.

The delivery job runs in this process against a real migrated database (SQLite and
PostgreSQL), as the scheduler runs it: its own engine, a long-lived pool of send workers
whose outcomes are recorded from their own threads. Organization A's receiver is a real
server on 127.0.0.1 that holds every request (200 and a body trickled for ever, or no answer
at all); organization B's answers at once. B's deliveries must arrive promptly while A's are
stuck, new events must keep fanning out, and A may never hold more than its cap of workers.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from booking.integrations import webhooks
from models import WebhookDelivery
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..hostile import HostileReceiver, Receiver
from ..process.test_scheduler_process import Clinic, databases  # noqa: F401 - the fixture, used below

HOLDER = "test-isolation"
JOB_BOUND = 5.0  # seconds a run of the delivery job may take at most: it must never wait on a receiver
DELIVERY_BOUND = 5.0  # seconds within which B's event must reach B's receiver


@pytest.fixture
def two_organizations(databases):  # noqa: F811 - the imported fixture
    url = databases[1]()
    organizations = Clinic(url), Clinic(url)
    yield url, organizations
    for made in organizations:
        made.close()


@pytest.fixture
def scheduler_runtime():
    """register(url) -> the runtime of a scheduler that holds the lease; its pool stopped at the end."""
    made = []

    def register(url: str) -> jobs.Runtime:
        run = jobs.register(HOLDER, SchedulerSettings(database_url=url, webhooks_allow_private=True))
        made.append(run)
        assert jobs.keep_lease(HOLDER)
        return run

    yield register
    for run in made:
        jobs.unregister(run.holder)


def subscribe(clinic: Clinic, url: str) -> str:
    with clinic.sessions.begin() as db:
        return webhooks.subscribe(db, clinic.organization_id, url, ["appointment.created"], None, allow_private=True).id


def book(clinic: Clinic, hour: int) -> str:
    """A consultation `hour` hours after tomorrow's midnight, booked now (one appointment.created)."""
    patient = clinic.caller.make_patient(name=f"Patient {hour}", email=f"p{hour}@example.com")["id"]
    starts_at = clinic.yesterday + timedelta(days=2, hours=hour)
    return clinic.booked(
        clinic.slot(patient, starts_at, kind="consultation", practitioner=hour % 2), booked_at=datetime.now(UTC)
    )


def run_job_bounded(holder: str) -> float:
    """Run the delivery job once in a thread; fail (without hanging) if it has not returned in JOB_BOUND."""
    finished = threading.Event()
    thread = threading.Thread(target=lambda: (jobs.deliver_webhooks(holder), finished.set()), daemon=True)
    started = time.monotonic()
    thread.start()
    assert finished.wait(JOB_BOUND), f"the delivery job was still running after {JOB_BOUND}s: it waits on a receiver"
    return time.monotonic() - started


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# (A receiver that trickles only its body is answered by its status: tests/services/test_net.py.)
@pytest.mark.parametrize("mode", ["slow-headers", "silent"])
def test_a_hostile_receiver_delays_only_its_own_deliveries(two_organizations, scheduler_runtime, mode):
    url, (a, b) = two_organizations
    hostile, fine = HostileReceiver(mode), Receiver()
    try:
        subscribe(a, hostile.url)
        subscribe(b, fine.url)
        for hour in range(6):  # six of A's events wait for its receiver
            book(a, hour)
        run = scheduler_runtime(url)
        cap = run.settings.webhook_sends_per_receiver

        latencies = []
        for hour in range(6):
            appointment = book(b, hour)
            booked = time.monotonic()
            run_job_bounded(HOLDER)  # fans B's new event out and sends it, beside A's stuck sends
            wait_for(
                lambda appointment=appointment: appointment in fine.arrivals,
                DELIVERY_BOUND,
                f"B's delivery of {appointment} while A's receiver holds {hostile.open} request(s)",
            )
            latencies.append(fine.arrivals[appointment] - booked)
            wait_for(lambda: hostile.open == cap, DELIVERY_BOUND, f"A's receiver to hold its cap of {cap}")
            assert hostile.most_at_once == cap  # A holds its cap of workers, no more

        # A's other deliveries were never claimed: still due now, not pushed ahead as in flight.
        with a.reader() as db:
            due = db.scalar(
                sa.text(
                    "SELECT count(*) FROM webhook_deliveries WHERE organization_id = :org AND status = 'pending' "
                    "AND next_attempt_at <= :now"
                ),
                {"org": a.organization_id, "now": datetime.now(UTC)},
            )
        assert due == 6 - cap
        assert hostile.requests == cap
        print(
            f"\nB's webhook latency with A's receiver {mode}: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} deliveries"
        )
        assert max(latencies) < DELIVERY_BOUND
    finally:
        hostile.close()
        fine.close()


# --- the claim's caps, on the test's rolled-back transaction -------------------------------------


@pytest.fixture
def three_hooks_three_events(world, db, monkeypatch, app):
    """Three subscriptions of one organization, three appointment.created events: nine due deliveries."""
    monkeypatch.setitem(app.config, "WEBHOOKS_ALLOW_PRIVATE", True)
    hooks = [
        world.caller.create("/v1/webhooks", {"url": f"http://127.0.0.1:9/{i}", "event_types": ["appointment.created"]})[
            "id"
        ]
        for i in range(3)
    ]
    world.consulted()
    for day in range(3):
        world.book(starts_at=world.at(day + 1), treatment_type_id=world.consultation["id"])
    assert webhooks.fan_out(db, world.clock.now) == 9
    db.flush()
    return hooks


def test_claims_stop_at_each_receivers_and_each_organizations_cap(three_hooks_three_events, db, world):
    room = webhooks.Room(free=8, per_subscription=2, per_organization=4)
    claimed = webhooks.claim_due(db, world.clock.now, 8, room=room)
    per_hook = {hook: sum(c.subscription_id == hook for c in claimed) for hook in three_hooks_three_events}
    assert len(claimed) == 4 and max(per_hook.values()) <= 2, per_hook
    assert {c.organization_id for c in claimed} == {world.caller.organization_id}


def test_a_receiver_at_its_cap_is_skipped_and_what_is_in_flight_is_never_claimed_twice(
    three_hooks_three_events, db, world
):
    saturated, half, _ = three_hooks_three_events
    first = webhooks.claim_due(db, world.clock.now, 8, room=webhooks.Room(8, per_subscription=1, per_organization=8))
    in_flight = tuple(c for c in first if c.subscription_id in (saturated, half))
    world.clock.advance(minutes=5)  # past IN_FLIGHT: their claims have run out, they are due again
    room = webhooks.Room(
        8,
        per_subscription=2,
        per_organization=8,
        in_flight=in_flight + tuple(c for c in first if c.subscription_id == saturated),
    )
    again = webhooks.claim_due(db, world.clock.now, 8, room=room)
    assert not {c.delivery_id for c in again} & {c.delivery_id for c in in_flight}
    assert [c.subscription_id for c in again].count(saturated) == 0  # two in flight: at its cap
    assert [c.subscription_id for c in again].count(half) == 1  # one in flight: room for one more


def test_a_slow_send_keeps_its_claim_until_its_outcome_is_recorded(three_hooks_three_events, db, world):
    [slow, recorded] = webhooks.claim_due(db, world.clock.now, 2)
    webhooks.record(db, recorded.delivery_id, webhooks.Outcome(500, "HTTP 500", None, 5), world.clock.now)
    retry_at = db.get(WebhookDelivery, recorded.delivery_id).next_attempt_at
    world.clock.advance(minutes=1)
    webhooks.renew_claims(db, [slow, recorded], world.clock.now)
    db.expire_all()
    assert db.get(WebhookDelivery, slow.delivery_id).next_attempt_at == world.clock.now + webhooks.IN_FLIGHT
    assert db.get(WebhookDelivery, recorded.delivery_id).next_attempt_at == retry_at  # its backoff stands
