"""The waitlist's sweep, driven in-process with the test clock (issue 17).

The scheduler's job `offer_waitlist` runs here against the test's transaction; the same job runs
in the real scheduler process in tests/process/test_scheduler_process.py. The world's practitioner
works 09:00-17:00, so a waitlist window of one quarter hour at 10:00 on Wednesday holds exactly one
start: booked by someone else it is full, and cancelling that booking frees it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from booking.services.waitlist import WaitlistSettings
from models import CapacityChange, Hold, OutboxEvent, WaitlistEntry, WaitlistLook, WaitlistOffer
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..booking_world import patient
from ..helpers import assert_problem

HOLDER = "test-waitlist"
DAY, HOUR = 2, 10  # Wednesday 6 January 2027, 10:00 London (= UTC in January)


@pytest.fixture
def sweep(app, request):
    """Run the waitlist sweep as the lease holder; returns the offers made. A test marked
    `@pytest.mark.parametrize("batch", [n])` reads the entries n at a time."""
    batch = getattr(request, "param", None) or 200
    settings = SchedulerSettings(database_url="unused", waitlist=WaitlistSettings(batch=batch))
    jobs.register(HOLDER, settings, sessions=app.extensions["db_write_sessions"])

    def run() -> int:
        jobs.keep_lease(HOLDER)
        return jobs.offer_waitlist(HOLDER)

    yield run
    jobs.unregister(HOLDER)


def join(world, who: dict, status=201, **overrides) -> dict:
    """`who` joins the waitlist for the 10:00 start on Wednesday, a minute after the previous one."""
    world.clock.advance(minutes=1)
    body = {
        "patient_id": who["id"],
        "treatment_type_id": world.microneedling["id"],
        "clinic_ids": [world.clinic["id"]],
        "start": world.at(DAY, HOUR),
        "end": world.at(DAY, HOUR, 15),
        **overrides,
    }
    response = world.caller.post("/v1/waitlist", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()


def entry(world, entry_id: str) -> dict:
    response = world.caller.get(f"/v1/waitlist/{entry_id}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def full_slot(world) -> dict:
    """The Wednesday 10:00 start, booked by another patient."""
    return world.book(patient_id=patient(world)["id"], starts_at=world.at(DAY, HOUR))


def cancel(world, appointment: dict) -> None:
    response = world.caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_unwell"})
    assert response.status_code == 200, response.get_json()


def events(db, type_: str) -> list[OutboxEvent]:
    return list(db.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == type_).order_by(OutboxEvent.id)))


def test_a_cancellation_is_offered_to_the_waiting_patient_and_booking_the_hold_fulfils_the_entry(world, sweep, db):
    booked = full_slot(world)
    waiting = join(world, patient(world))
    assert waiting["status"] == "waiting" and waiting["offer"] is None
    assert sweep() == 0  # full: nothing to offer
    cancel(world, booked)
    assert sweep() == 1
    offered = entry(world, waiting["id"])
    assert offered["status"] == "offered" and offered["offers_made"] == 1
    hold = offered["offer"]["hold"]
    assert hold["source"] == "waitlist" and hold["status"] == "active"
    assert hold["starts_at"] == booked["starts_at"] and hold["patient_id"] == waiting["patient_id"]
    # Two hours to answer (WAITLIST_OFFER_MINUTES), well before the 2-hour notice ahead of the slot.
    assert datetime.fromisoformat(hold["expires_at"]) == world.clock.now + timedelta(hours=2)
    [event] = events(db, "waitlist.offered")
    assert event.subject_id == waiting["id"]
    assert event.payload["hold"]["id"] == hold["id"] and event.payload["patient_id"] == waiting["patient_id"]
    assert event.payload["waitlist_entry"]["id"] == waiting["id"]
    assert event.payload["slot"]["starts_at"] == hold["starts_at"] == event.payload["hold"]["starts_at"]
    assert event.payload["expires_at"] == hold["expires_at"]
    assert sweep() == 0  # one live offer per entry

    frontend = world.caller.with_scopes("read", "book", channel="frontend")
    made = frontend.post("/v1/appointments", json={"hold_id": hold["id"]})
    assert made.status_code == 201, made.get_json()
    done = entry(world, waiting["id"])
    assert done["status"] == "fulfilled" and done["appointment_id"] == made.get_json()["id"]
    assert done["offer"]["outcome"] == "booked"
    [fulfilled] = events(db, "waitlist.fulfilled")
    assert fulfilled.payload["waitlist_entry"]["appointment_id"] == made.get_json()["id"]
    assert sweep() == 0


def test_the_earliest_joined_entry_that_fits_gets_the_slot(world, sweep):
    booked = full_slot(world)
    first, second, third = (join(world, patient(world)) for _ in range(3))
    cancel(world, booked)
    assert sweep() == 1
    assert [entry(world, e["id"])["status"] for e in (first, second, third)] == ["offered", "waiting", "waiting"]


def test_a_later_entry_gets_the_slot_when_the_earlier_ones_do_not_fit_it(world, sweep):
    booked = full_slot(world)
    # Each earlier one is ruled out by another thing: the time of day, the weekday, a session
    # 10 days after (rule 5), a contraindication (rule 2), no consultation (rule 1).
    afternoon = join(world, patient(world), time_from="14:00")
    thursdays = join(world, patient(world), weekdays=[4])
    recent = patient(world)
    world.book(patient_id=recent["id"], starts_at=world.at(DAY + 10, 11))
    too_soon = join(world, recent)
    acne = patient(world, contraindications=["active_acne"])
    contraindicated = join(world, acne)
    unconsulted = join(world, patient(world, consulted=False))
    fits = join(world, patient(world))
    cancel(world, booked)
    assert sweep() == 1
    statuses = [entry(world, e["id"])["status"] for e in (afternoon, thursdays, too_soon, contraindicated, unconsulted)]
    assert statuses == ["waiting"] * 5
    assert entry(world, fits["id"])["status"] == "offered"


@pytest.mark.parametrize("sweep", [2], indirect=True)
def test_every_open_entry_is_looked_at_however_many_wait_before_it(world, sweep):
    """Read two at a time: the four earlier entries that fit nothing do not hide the fifth."""
    booked = full_slot(world)
    unfit = [join(world, patient(world), time_from="16:00") for _ in range(4)]
    fits = join(world, patient(world))
    cancel(world, booked)
    assert sweep() == 1
    assert entry(world, fits["id"])["status"] == "offered"
    assert {entry(world, e["id"])["status"] for e in unfit} == {"waiting"}


def test_no_offer_breaks_the_booking_policy_of_a_frontend(world, sweep, db):
    booked = full_slot(world)
    offline = patient(world)
    join(world, offline)
    response = world.caller.patch(f"/v1/practitioners/{world.practitioner['id']}", json={"bookable_online": False})
    assert response.status_code == 200, response.get_json()
    cancel(world, booked)
    assert sweep() == 0  # a frontend may not book this practitioner
    assert world.caller.patch(f"/v1/practitioners/{world.practitioner['id']}", json={"bookable_online": True})
    world.clock.now = datetime.fromisoformat(world.at(DAY, HOUR)) - timedelta(minutes=110)  # inside the notice
    assert sweep() == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Hold).where(Hold.source == "waitlist")) == 0


def test_an_offer_lapses_no_later_than_the_notice_before_the_slot(world, sweep):
    booked = full_slot(world)
    waiting = join(world, patient(world))
    cancel(world, booked)
    start = datetime.fromisoformat(world.at(DAY, HOUR))
    world.clock.now = start - timedelta(hours=3)  # 3 hours ahead: one hour to answer, not two
    assert sweep() == 1
    hold = entry(world, waiting["id"])["offer"]["hold"]
    assert datetime.fromisoformat(hold["expires_at"]) == start - timedelta(hours=2)


def test_a_slot_is_offered_to_one_entry_at_a_time(world, sweep, db):
    booked = full_slot(world)
    first, second = join(world, patient(world)), join(world, patient(world))
    cancel(world, booked)
    assert sweep() == 1
    assert sweep() == 0
    assert [entry(world, e["id"])["status"] for e in (first, second)] == ["offered", "waiting"]
    holds = db.scalars(sa.select(Hold).where(Hold.source == "waitlist")).all()
    assert len(holds) == 1


def test_the_database_refuses_a_second_live_offer_for_an_entry(world, sweep, db):
    booked = full_slot(world)
    waiting = join(world, patient(world))
    cancel(world, booked)
    sweep()
    live = db.scalar(sa.select(WaitlistOffer).where(WaitlistOffer.entry_id == waiting["id"]))
    other_hold = world.hold(patient_id=patient(world)["id"], starts_at=world.at(DAY + 1, 15))
    with pytest.raises(IntegrityError), db.begin_nested():
        db.add(
            WaitlistOffer(
                organization_id=live.organization_id,
                entry_id=waiting["id"],
                hold_id=other_hold["id"],
                created_at=world.clock.now,
            )
        )
        db.flush()


def test_a_declined_offer_moves_on_to_the_next_entry_and_is_not_offered_again(world, sweep):
    booked = full_slot(world)
    first, second = join(world, patient(world)), join(world, patient(world))
    cancel(world, booked)
    sweep()
    declined = entry(world, first["id"])["offer"]["hold"]
    assert world.caller.delete(f"/v1/holds/{declined['id']}").status_code == 204
    after = entry(world, first["id"])
    assert after["status"] == "waiting" and after["offer"]["outcome"] == "declined"
    assert sweep() == 1
    assert entry(world, first["id"])["status"] == "waiting"  # the slot it declined is not offered again
    offered = entry(world, second["id"])
    assert offered["status"] == "offered" and offered["offer"]["hold"]["starts_at"] == declined["starts_at"]


def test_an_expired_offer_moves_on_to_the_next_entry(world, sweep, db):
    booked = full_slot(world)
    first, second = join(world, patient(world)), join(world, patient(world))
    cancel(world, booked)
    sweep()
    lapsed = entry(world, first["id"])["offer"]["hold"]
    world.clock.now = datetime.fromisoformat(lapsed["expires_at"]) + timedelta(seconds=1)
    assert entry(world, first["id"])["status"] == "waiting"  # lapsed, before the sweep records it
    assert sweep() == 1
    assert entry(world, first["id"])["offer"]["outcome"] == "expired"
    assert entry(world, second["id"])["offer"]["hold"]["starts_at"] == lapsed["starts_at"]
    assert [e.subject_id for e in events(db, "hold.expired")] == [lapsed["id"]]


def test_an_entry_whose_window_has_passed_ends(world, sweep, db):
    full_slot(world)
    waiting = join(world, patient(world))
    assert sweep() == 0
    world.clock.now = datetime.fromisoformat(waiting["end"]) + timedelta(minutes=1)
    sweep()
    ended = entry(world, waiting["id"])
    assert ended["status"] == "expired" and ended["ended_at"] is not None
    [event] = events(db, "waitlist.expired")
    assert event.subject_id == waiting["id"]
    sweep()
    assert len(events(db, "waitlist.expired")) == 1


def test_leaving_the_waitlist_releases_the_offer_to_the_next_entry(world, sweep, db):
    booked = full_slot(world)
    first, second = join(world, patient(world)), join(world, patient(world))
    cancel(world, booked)
    sweep()
    hold = entry(world, first["id"])["offer"]["hold"]
    assert world.caller.delete(f"/v1/waitlist/{first['id']}").status_code == 204
    assert_problem(world.caller.get(f"/v1/waitlist/{first['id']}"), 404, "not_found")  # gone, as every DELETE
    stored = db.get(WaitlistEntry, first["id"])
    assert (stored.status, stored.offers[-1].outcome) == ("cancelled", "withdrawn")
    assert world.caller.get(f"/v1/holds/{hold['id']}").get_json()["status"] == "released"
    assert sweep() == 1
    assert entry(world, second["id"])["status"] == "offered"
    assert_problem(world.caller.delete(f"/v1/waitlist/{first['id']}"), 404, "not_found")


def test_a_hold_lapsed_by_the_other_sweep_frees_its_slot_for_the_waitlist(world, sweep, app):
    held = world.hold(patient_id=patient(world)["id"], starts_at=world.at(DAY, HOUR))
    waiting = join(world, patient(world))
    assert sweep() == 0
    world.clock.now = datetime.fromisoformat(held["expires_at"]) + timedelta(seconds=1)
    assert sweep() == 1
    assert entry(world, waiting["id"])["offer"]["hold"]["starts_at"] == held["starts_at"]


def test_time_off_removed_frees_the_slot(world, sweep):
    start = datetime.fromisoformat(world.at(DAY, 9))
    off = world.caller.create(
        f"/v1/practitioners/{world.practitioner['id']}/time-off",
        {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=8)).isoformat(), "reason": "leave"},
    )
    waiting = join(world, patient(world))
    assert sweep() == 0
    gone = world.caller.delete(f"/v1/practitioners/{world.practitioner['id']}/time-off/{off['id']}")
    assert gone.status_code == 204
    assert sweep() == 1
    assert entry(world, waiting["id"])["status"] == "offered"


def test_a_reschedule_away_frees_the_slot(world, sweep):
    booked = full_slot(world)
    waiting = join(world, patient(world))
    assert sweep() == 0
    moved = world.caller.patch(f"/v1/appointments/{booked['id']}", json={"starts_at": world.at(DAY + 1, HOUR)})
    assert moved.status_code == 200, moved.get_json()
    assert sweep() == 1
    assert entry(world, waiting["id"])["offer"]["hold"]["starts_at"] == booked["starts_at"]


def test_hours_added_make_room_for_an_entry(world, sweep):
    late = join(world, patient(world), start=world.at(DAY, 17, 30), end=world.at(DAY, 17, 45))
    assert sweep() == 0  # the practitioner stops at 17:00
    week = [{"clinic_id": world.clinic["id"], "weekday": d, "start": "09:00", "end": "19:00"} for d in range(6)]
    response = world.caller.put(f"/v1/practitioners/{world.practitioner['id']}/working-hours", json=week)
    assert response.status_code == 200, response.get_json()
    assert sweep() == 1
    assert entry(world, late["id"])["offer"]["hold"]["starts_at"] == world.at(DAY, 17, 30)


def test_the_sweep_leaves_entries_of_the_whole_chain_to_any_clinic(world, sweep):
    chain = join(world, patient(world), clinic_ids=[])
    assert sweep() == 1
    assert entry(world, chain["id"])["offer"]["hold"]["clinic_id"] == world.clinic["id"]


def test_a_waitlist_entry_with_a_course_books_on_it(world, sweep):
    who = patient(world)
    course = world.caller.make_course(who["id"], world.microneedling["id"])
    waiting = join(world, who, course_id=course["id"])
    assert sweep() == 1
    assert entry(world, waiting["id"])["offer"]["hold"]["course_id"] == course["id"]


def test_an_ended_entry_is_not_offered(world, sweep, db):
    booked = full_slot(world)
    waiting = join(world, patient(world))
    assert world.caller.delete(f"/v1/waitlist/{waiting['id']}").status_code == 204
    cancel(world, booked)
    assert sweep() == 0
    assert db.get(WaitlistEntry, waiting["id"]).status == "cancelled"
    assert_problem(world.caller.get("/v1/waitlist/wait_missing"), 404, "not_found")


# --- the noisy neighbour: what a sweep costs -------------------------------------------------


@pytest.fixture
def searches(monkeypatch):
    """The availability searches the sweep makes, counted by organization."""
    from collections import Counter

    from booking.services import availability_search

    counted: Counter[str] = Counter()
    real = availability_search.search

    def counting(db, org, *args, **kwargs):
        counted[org] += 1
        return real(db, org, *args, **kwargs)

    monkeypatch.setattr(availability_search, "search", counting)
    return counted


@pytest.fixture
def budgeted(app):
    """The sweep with a budget of `searches_per_organization` searches per organization."""
    holder = "test-waitlist-budget"

    def make(budget: int):
        waitlist_settings = WaitlistSettings(searches_per_organization=budget)
        jobs.register(
            holder,
            SchedulerSettings(database_url="unused", waitlist=waitlist_settings),
            sessions=app.extensions["db_write_sessions"],
        )

        def run() -> int:
            jobs.keep_lease(holder)
            return jobs.offer_waitlist(holder)

        return run

    yield make
    jobs.unregister(holder)


def swept(sweep, searches) -> tuple[int, dict]:
    """One sweep: the offers it made and its searches by organization."""
    searches.clear()
    made = sweep()
    return made, dict(searches)


def crowd(app, world, how_many: int) -> list[str]:
    """`how_many` entries of one patient of `world`, joined in this order, each for the full
    Wednesday 10:00 start: written on the ORM, as the API would, to keep the test short."""
    who = patient(world)
    start, end = (datetime.fromisoformat(world.at(DAY, HOUR, m)) for m in (0, 15))
    with app.extensions["db_write_sessions"]() as db:
        rows = [
            WaitlistEntry(
                organization_id=world.caller.organization_id,
                patient_id=who["id"],
                treatment_type_id=world.microneedling["id"],
                clinic_ids=[world.clinic["id"]],
                window_starts_at=start,
                window_ends_at=end,
                weekdays=[],
                timezone="Europe/London",
                status="waiting",
                created_at=world.clock.now + timedelta(microseconds=n),
            )
            for n in range(how_many)
        ]
        db.add_all(rows)
        db.commit()
        return [row.id for row in rows]


def looked_at(db, entry_ids: list[str]) -> list[bool]:
    looked = set(db.scalars(sa.select(WaitlistLook.entry_id).where(WaitlistLook.entry_id.in_(entry_ids))))
    return [entry_id in looked for entry_id in entry_ids]


def test_an_organization_with_hundreds_of_unfit_entries_does_not_delay_another_one(
    app, world, other, clock, budgeted, searches, db
):
    from ..booking_world import build_world

    rival = build_world(other, clock)
    a, b = world.caller.organization_id, rival.caller.organization_id
    full_slot(world)
    crowded = crowd(app, world, 300)  # A: 300 entries for a start that stays full
    booked = full_slot(rival)
    waiting = join(rival, patient(rival))  # B: one entry, for a start about to free
    cancel(rival, booked)
    sweep = budgeted(50)

    made, spent = swept(sweep, searches)
    assert made == 1 and entry(rival, waiting["id"])["status"] == "offered"  # B served in the first sweep
    assert spent[b] == 1
    assert 50 <= spent[a] <= 51  # A's budget (checked before each entry; each of A's looks is one search)
    # A's backlog is worked through earliest-joined first, going on where the last sweep stopped.
    assert looked_at(db, crowded) == [True] * spent[a] + [False] * (300 - spent[a])
    for _ in range(5):
        made, spent = swept(sweep, searches)
        assert made == 0 and spent.get(a, 0) <= 51 and b not in spent
    assert all(looked_at(db, crowded))
    # Nothing changed since: neither organization costs a search.
    assert swept(sweep, searches) == (0, {})


def test_an_unchanged_organization_costs_no_search_and_a_change_elsewhere_does_not_wake_it(
    app, world, other, clock, sweep, searches
):
    from ..booking_world import build_world

    rival = build_world(other, clock)
    full_slot(world)
    crowd(app, world, 5)
    rival_booking = full_slot(rival)
    join(rival, patient(rival), time_from="16:00")  # never fits the 10:00 start
    made, spent = swept(sweep, searches)
    assert made == 0 and spent == {world.caller.organization_id: 5, rival.caller.organization_id: 1}
    assert swept(sweep, searches) == (0, {})
    cancel(rival, rival_booking)  # a change in B only
    assert swept(sweep, searches) == (0, {rival.caller.organization_id: 1})
    assert swept(sweep, searches) == (0, {})


def test_a_hold_lapsing_by_the_clock_wakes_the_entries_with_no_write(world, sweep, searches, db):
    held = world.hold(patient_id=patient(world)["id"], starts_at=world.at(DAY, HOUR))
    waiting = join(world, patient(world))
    assert swept(sweep, searches) == (0, {world.caller.organization_id: 1})
    world.clock.advance(minutes=1)
    assert swept(sweep, searches) == (0, {})  # still held: nothing to look at
    world.clock.now = datetime.fromisoformat(held["expires_at"]) + timedelta(seconds=1)
    assert db.get(Hold, held["id"]).outcome is None  # no sweep has written the lapse
    made, spent = swept(sweep, searches)
    assert made == 1 and spent == {world.caller.organization_id: 1}
    assert entry(world, waiting["id"])["offer"]["hold"]["starts_at"] == held["starts_at"]


def test_a_policy_edit_wakes_the_entries(world, sweep, searches):
    waiting = join(world, patient(world))
    world.clock.now = datetime.fromisoformat(world.at(DAY, HOUR)) - timedelta(minutes=90)  # inside the 2 h notice
    assert sweep() == 0
    assert swept(sweep, searches) == (0, {})
    response = world.caller.patch("/v1/organization", json={"booking_policy": {"min_notice_minutes": 30}})
    assert response.status_code == 200, response.get_json()
    assert sweep() == 1
    assert entry(world, waiting["id"])["status"] == "offered"


def test_a_contraindication_resolved_wakes_the_entry(world, sweep, searches):
    acne = patient(world, contraindications=["active_acne"])
    waiting = join(world, acne)
    assert sweep() == 0
    assert swept(sweep, searches) == (0, {})
    response = world.caller.patch(f"/v1/patients/{acne['id']}", json={"contraindications": []})
    assert response.status_code == 200, response.get_json()
    assert sweep() == 1
    assert entry(world, waiting["id"])["status"] == "offered"


def test_a_consultation_recorded_wakes_the_entry(world, sweep, searches):
    unconsulted = patient(world, consulted=False)
    waiting = join(world, unconsulted)
    assert sweep() == 0
    assert swept(sweep, searches) == (0, {})
    world.consulted(unconsulted["id"])
    assert sweep() == 1
    assert entry(world, waiting["id"])["status"] == "offered"


def test_the_booking_horizon_moving_on_wakes_an_entry_beyond_it(world, sweep, searches):
    far = 93  # Wednesday 7 April 2027, 10:00: inside the 90-day horizon from Wednesday 6 January, 10:00
    waiting = join(world, patient(world), start=world.at(far, HOUR), end=world.at(far, HOUR, 15))
    assert sweep() == 0
    assert swept(sweep, searches) == (0, {})  # the horizon has not moved an hour yet
    world.clock.advance(hours=1)
    assert swept(sweep, searches) == (0, {world.caller.organization_id: 1})  # looked at again: not yet
    world.clock.advance(days=3, hours=2)  # Thursday 7 January, 11:00
    assert sweep() == 1
    offered = entry(world, waiting["id"])["offer"]["hold"]["starts_at"]
    assert datetime.fromisoformat(offered) == datetime.fromisoformat(world.at(far, HOUR))


def changes(db, world) -> int:
    return db.scalar(
        sa.select(sa.func.count())
        .select_from(CapacityChange)
        .where(CapacityChange.organization_id == world.caller.organization_id)
    )


def test_only_writes_that_may_free_capacity_are_counted(world, db):
    """Bookings, holds and booking a hold take capacity: no change. A cancel, a release: changes."""
    frontend = world.caller.with_scopes("read", "book", channel="frontend")
    first, second, third = (patient(world) for _ in range(3))  # each consultation recorded is a change
    before = changes(db, world)
    booked = world.book(patient_id=first["id"], starts_at=world.at(DAY, HOUR))
    held = world.hold(patient_id=second["id"], starts_at=world.at(DAY, 12))
    assert frontend.post("/v1/appointments", json={"hold_id": held["id"]}).status_code == 201
    released = world.hold(patient_id=third["id"], starts_at=world.at(DAY, 14))
    assert changes(db, world) == before
    cancel(world, booked)
    after_cancel = changes(db, world)
    assert after_cancel > 0
    assert world.caller.delete(f"/v1/holds/{released['id']}").status_code == 204
    assert changes(db, world) > after_cancel


def test_folding_the_counted_changes_keeps_the_signal(world, sweep, searches, db, monkeypatch):
    from booking.services import waitlist as service

    monkeypatch.setattr(service, "FOLD_AT", 1)  # fold on every sweep that finds a change row
    join(world, patient(world), time_from="16:00")  # fits nothing at 10:00
    cancel(world, world.book(patient_id=patient(world)["id"], starts_at=world.at(DAY + 1, HOUR)))
    assert changes(db, world) > 0
    assert swept(sweep, searches) == (0, {world.caller.organization_id: 1})
    assert changes(db, world) == 0  # folded into the count
    assert swept(sweep, searches) == (0, {})  # the fold itself is no change
    cancel(world, world.book(patient_id=patient(world)["id"], starts_at=world.at(DAY + 1, 12)))
    assert swept(sweep, searches) == (0, {world.caller.organization_id: 1})  # a change after a fold counts


def test_the_cursor_is_kept_in_the_database_so_another_scheduler_goes_on_from_it(app, world, db):
    """Node one spends its budget and crashes; node two, with a fresh runtime, takes the lease and
    goes on after the last entry node one looked at, then round to the start: none skipped."""
    from models import SchedulerLease

    full_slot(world)
    crowded = crowd(app, world, 5)
    budget = SchedulerSettings(database_url="unused", waitlist=WaitlistSettings(searches_per_organization=2))
    for holder in ("node-one", "node-two"):
        jobs.register(holder, budget, sessions=app.extensions["db_write_sessions"])
    try:
        assert jobs.keep_lease("node-one") and not jobs.keep_lease("node-two")
        jobs.offer_waitlist("node-one")
        assert looked_at(db, crowded) == [True, True, False, False, False]
        jobs.unregister("node-one")  # SIGKILLed: its lease runs out
        with app.extensions["db_write_sessions"]() as session:
            session.execute(sa.update(SchedulerLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        assert jobs.keep_lease("node-two")
        jobs.offer_waitlist("node-two")
        assert looked_at(db, crowded) == [True, True, True, True, False]
        jobs.offer_waitlist("node-two")
        assert all(looked_at(db, crowded))
    finally:
        jobs.unregister("node-one")
        jobs.unregister("node-two")


def test_the_change_rows_of_an_organization_without_a_waitlist_are_folded_too(world, sweep, db, monkeypatch):
    from booking.services import waitlist as service

    monkeypatch.setattr(service, "FOLD_AT", 1)
    cancel(world, world.book(patient_id=patient(world)["id"], starts_at=world.at(DAY, HOUR)))
    assert changes(db, world) > 0
    sweep()  # no entry anywhere
    assert changes(db, world) == 0
