"""Follow-up proposals, hold expiry, reminders and the outbox, driven in-process with the test clock.

The scheduler's jobs run here against the test's transaction (a runtime registered
with the test's sessionmaker); the same jobs run in the real scheduler process in
tests/process/test_scheduler_process.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from models import CoursePlan, Hold, OutboxEvent
from schedulers import jobs
from schedulers.config import SchedulerSettings

from ..booking_world import MONDAY, build_world

HOLDER = "test-scheduler"


@pytest.fixture
def scheduler(app):
    """Run a job as the lease holder: scheduler('propose_follow_ups')."""
    settings = SchedulerSettings(database_url="unused")
    jobs.register(HOLDER, settings, sessions=app.extensions["db_write_sessions"])

    def run(name: str, holder: str = HOLDER):
        jobs.keep_lease(holder)
        return getattr(jobs, name)(holder)

    return run


def completed_session(world, *, day=0, hour=10, **overrides) -> dict:
    """Book a session on Monday + day at hour (UTC = London), let time pass, complete it."""
    world.consulted()
    appointment = world.book(starts_at=world.at(day, hour), **overrides)
    world.clock.now = datetime.fromisoformat(appointment["ends_at"]) + timedelta(minutes=5)
    response = world.caller.post(f"/v1/appointments/{appointment['id']}/complete")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def follow_ups(world, **params) -> list[dict]:
    response = world.caller.get("/v1/follow-ups", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_a_completed_session_gets_a_held_follow_up_in_the_window(world, scheduler):
    session = completed_session(world)
    assert scheduler("propose_follow_ups") == 1
    [proposal] = follow_ups(world)
    assert proposal["status"] == "proposed" and proposal["appointment_id"] == session["id"]
    hold = proposal["hold"]
    assert hold["source"] == "follow_up" and hold["status"] == "active"
    assert hold["practitioner_id"] == session["practitioner_id"]
    gap = datetime.fromisoformat(hold["starts_at"]) - datetime.fromisoformat(session["starts_at"])
    assert timedelta(days=28) <= gap <= timedelta(days=42)
    assert datetime.fromisoformat(hold["starts_at"]).time() == datetime.fromisoformat(session["starts_at"]).time()
    assert scheduler("propose_follow_ups") == 0  # idempotent
    assert len(follow_ups(world)) == 1


def events(db, type_: str | None = None) -> list[OutboxEvent]:
    query = sa.select(OutboxEvent).order_by(OutboxEvent.id)
    return list(db.scalars(query.where(OutboxEvent.type == type_) if type_ else query))


def take_time_off(world, practitioner_id: str, start: datetime, end: datetime) -> None:
    world.caller.create(
        f"/v1/practitioners/{practitioner_id}/time-off",
        {"starts_at": start.isoformat(), "ends_at": end.isoformat(), "reason": "leave"},
    )


def second_practitioner(world) -> dict:
    p2 = world.caller.make_practitioner(
        [world.clinic["id"]], name="Dr Two", treatment_type_ids=[world.microneedling["id"], world.review["id"]]
    )
    week = [{"clinic_id": world.clinic["id"], "weekday": d, "start": "09:00", "end": "17:00"} for d in range(6)]
    assert world.caller.put(f"/v1/practitioners/{p2['id']}/working-hours", json=week).status_code == 200
    return p2


def test_the_proposal_is_an_event_with_its_hold(world, scheduler, db):
    session = completed_session(world)
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    [event] = events(db, "follow_up.proposed")
    assert event.subject_id == proposal["id"] and event.payload["follow_up"]["hold"]["id"] == proposal["hold"]["id"]
    assert [e.type for e in events(db) if e.subject_id == session["id"]] == [
        "appointment.created",
        "appointment.completed",
    ]


def test_the_hold_lapses_seven_days_after_it_is_made(world, scheduler):
    completed_session(world)
    made = world.clock.now
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    assert datetime.fromisoformat(proposal["hold"]["expires_at"]) == made + timedelta(days=7)


def test_another_practitioner_when_the_same_one_is_away(world, scheduler):
    session = completed_session(world)
    p2 = second_practitioner(world)
    start = datetime.fromisoformat(session["starts_at"])
    take_time_off(world, world.practitioner["id"], start + timedelta(days=20), start + timedelta(days=50))
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    assert proposal["status"] == "proposed" and proposal["hold"]["practitioner_id"] == p2["id"]


def test_the_time_of_day_stays_close_to_the_last_sessions(world, scheduler):
    session = completed_session(world, hour=14)
    # Every 14:00 in the window is taken by another patient: the nearest free time is 13:45 or 15:xx.
    start = datetime.fromisoformat(session["starts_at"])
    for day in range(28, 43):
        other = world.new_patient(name=f"Other {day}")
        world.consulted(other["id"])
        world.caller.post(
            "/v1/appointments",
            json=world.slot(
                patient_id=other["id"],
                treatment_type_id=world.review["id"],
                starts_at=(start + timedelta(days=day)).isoformat(),
            ),
        )
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    held = datetime.fromisoformat(proposal["hold"]["starts_at"])
    minutes = held.hour * 60 + held.minute
    assert 0 < abs(minutes - 14 * 60) <= 60, held


def test_nothing_free_in_the_window_is_a_no_slot_proposal(world, scheduler, db):
    session = completed_session(world)
    start = datetime.fromisoformat(session["starts_at"])
    take_time_off(world, world.practitioner["id"], start + timedelta(days=20), start + timedelta(days=50))
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    assert proposal["status"] == "no_slot" and proposal["hold"] is None
    assert proposal["reason"]["code"] == "no_slot"
    assert [e.subject_id for e in events(db, "follow_up.no_slot")] == [proposal["id"]]
    assert follow_ups(world, status="no_slot") == [proposal]
    assert follow_ups(world, status="proposed") == []


def test_a_course_at_its_cap_gets_no_proposal(world, scheduler, db):
    course = world.caller.make_course(world.patient["id"], world.microneedling["id"], max_sessions=1)
    session = completed_session(world, course_id=course["id"])
    scheduler("propose_follow_ups")
    [record] = follow_ups(world)
    assert record["status"] == "not_needed" and record["hold"] is None
    assert record["reason"]["code"] == "course_complete"
    assert events(db, "follow_up.proposed") == [] and record["appointment_id"] == session["id"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Hold).where(Hold.source == "follow_up")) == 0


def test_a_patient_who_already_booked_the_next_session_gets_no_hold(world, scheduler):
    session = completed_session(world)
    start = datetime.fromisoformat(session["starts_at"])
    world.book(starts_at=(start + timedelta(days=35)).isoformat())
    scheduler("propose_follow_ups")
    [record] = follow_ups(world)
    assert record["status"] == "not_needed" and record["reason"]["code"] == "already_booked"


def test_the_patients_rules_can_rule_the_window_out(world, scheduler):
    completed_session(world)
    response = world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": ["rosacea"]})
    assert response.status_code == 200, response.get_json()
    scheduler("propose_follow_ups")
    [record] = follow_ups(world)
    assert record["status"] == "no_slot" and record["reason"]["code"] == "contraindicated"


def test_confirming_books_the_held_slot(world, scheduler):
    completed_session(world)
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    response = world.caller.post("/v1/appointments", json={"hold_id": proposal["hold"]["id"]})
    assert response.status_code == 201, response.get_json()
    booked = response.get_json()
    assert booked["starts_at"] == proposal["hold"]["starts_at"]
    [after] = follow_ups(world)
    assert after["status"] == "booked" and after["booked_appointment_id"] == booked["id"]


def test_declining_releases_the_hold(world, scheduler):
    completed_session(world)
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    assert world.caller.delete(f"/v1/holds/{proposal['hold']['id']}").status_code == 204
    [after] = follow_ups(world)
    assert after["status"] == "declined" and after["hold"]["status"] == "released"


def offered(world, patient_id: str, at: str) -> bool:
    start = datetime.fromisoformat(at)
    response = world.caller.get(
        "/v1/availability",
        query_string={
            "clinic_id": world.clinic["id"],
            "treatment_type_id": world.review["id"],
            "patient_id": patient_id,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=15)).isoformat(),
        },
    )
    assert response.status_code == 200, response.get_json()
    return any(s["starts_at"] == at for s in response.get_json()["data"])


def test_a_follow_up_hold_blocks_its_slot_until_it_expires(world, scheduler, db):
    completed_session(world)
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    hold = proposal["hold"]
    other = world.new_patient(name="Someone Else")
    assert not offered(world, other["id"], hold["starts_at"])
    world.caller.post(
        "/v1/appointments",
        json=world.slot(patient_id=other["id"], treatment_type_id=world.review["id"], starts_at=hold["starts_at"]),
    )
    refused = world.caller.post(
        "/v1/appointments",
        json=world.slot(patient_id=other["id"], treatment_type_id=world.review["id"], starts_at=hold["starts_at"]),
    )
    assert refused.status_code == 409 and refused.get_json()["code"] == "slot_unavailable"

    world.clock.now = datetime.fromisoformat(hold["expires_at"]) + timedelta(seconds=1)
    assert follow_ups(world, status="expired") == [dict(proposal, status="expired", hold=dict(hold, status="expired"))]
    assert offered(world, other["id"], hold["starts_at"])  # an expired hold claims nothing, swept or not
    assert scheduler("expire_holds") == 1
    assert scheduler("expire_holds") == 0
    [after] = follow_ups(world)
    assert after["status"] == "expired" and after["hold"]["status"] == "expired"
    [event] = events(db, "hold.expired")
    assert event.subject_id == hold["id"]
    booked = world.caller.post("/v1/appointments", json={"hold_id": hold["id"]})
    assert booked.status_code == 410 and booked.get_json()["code"] == "hold_expired"


def test_frontend_holds_expire_too(world, scheduler, db):
    world.consulted()
    hold = world.hold(starts_at=world.at(2))
    world.clock.advance(minutes=9)
    assert scheduler("expire_holds") == 0
    world.clock.advance(minutes=2)
    assert scheduler("expire_holds") == 1
    assert world.caller.get(f"/v1/holds/{hold['id']}").get_json()["status"] == "expired"
    assert [e.subject_id for e in events(db, "hold.expired")] == [hold["id"]]


def test_a_course_plans_holds_expire_with_it_in_the_expiry_sweep(world, scheduler, db):
    world.consulted()
    course = world.caller.make_course(world.patient["id"], world.microneedling["id"])
    response = world.caller.post(f"/v1/courses/{course['id']}/plan", json={"sessions": 2, "hold": True})
    assert response.status_code == 200, response.get_json()
    plan = response.get_json()
    world.clock.advance(minutes=9)
    assert scheduler("expire_holds") == 0
    world.clock.advance(minutes=2)
    assert scheduler("expire_holds") == 2  # both holds, released with their plan
    assert scheduler("expire_holds") == 0
    read = world.caller.get(f"/v1/course-plans/{plan['id']}").get_json()
    assert read["status"] == "expired" and {s["hold"]["status"] for s in read["sessions"]} == {"expired"}
    assert db.get(CoursePlan, plan["id"]).status == "expired"
    assert sorted(e.subject_id for e in events(db, "hold.expired")) == sorted(s["hold"]["id"] for s in plan["sessions"])
    [released] = events(db, "course_plan.released")
    assert released.subject_id == plan["id"] and released.payload["course_plan"]["status"] == "expired"


def test_reminders_at_48_and_2_hours_once_each(world, scheduler, db):
    world.consulted()
    appointment = world.book(starts_at=world.at(3))  # Thursday 10:00, booked Monday 08:00
    start = datetime.fromisoformat(appointment["starts_at"])
    world.clock.now = start - timedelta(hours=48, minutes=1)
    assert scheduler("send_reminders") == 0
    world.clock.now = start - timedelta(hours=47)
    assert scheduler("send_reminders") == 1
    assert scheduler("send_reminders") == 0
    world.clock.now = start - timedelta(hours=1)
    assert scheduler("send_reminders") == 1
    reminders = events(db, "appointment.reminder")
    assert [(e.subject_id, e.payload["before"]) for e in reminders] == [
        (appointment["id"], "48h"),
        (appointment["id"], "2h"),
    ]
    assert "no makeup" in " ".join(reminders[0].payload["instructions"])
    assert reminders[0].payload["appointment"]["starts_at"] == appointment["starts_at"]


def test_a_late_booking_gets_only_the_reminders_still_ahead(world, scheduler, db):
    world.consulted()
    appointment = world.book(starts_at=world.at(1))  # 26 hours ahead: the 48 h moment has passed
    world.clock.now = datetime.fromisoformat(appointment["starts_at"]) - timedelta(minutes=90)
    assert scheduler("send_reminders") == 1
    assert [e.payload["before"] for e in events(db, "appointment.reminder")] == ["2h"]


def test_cancelled_appointments_get_no_reminder(world, scheduler, db):
    world.consulted()
    appointment = world.book(starts_at=world.at(3))
    world.caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={"reason": "patient_request"})
    world.clock.now = datetime.fromisoformat(appointment["starts_at"]) - timedelta(hours=1)
    assert scheduler("send_reminders") == 0


def test_aftercare_once_after_completion(world, scheduler, db):
    session = completed_session(world)
    assert scheduler("send_reminders") == 1
    assert scheduler("send_reminders") == 0
    [event] = events(db, "appointment.aftercare")
    assert event.subject_id == session["id"] and "sunscreen" in " ".join(event.payload["instructions"])
    assert (event.payload["language"], event.payload["direction"]) == ("en", "ltr")


def test_reminders_and_aftercare_are_in_the_patients_language(world, scheduler, db):
    """Rule 10's instructions in Arabic for a patient who reads Arabic, right to left."""
    world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"language": "ar"})
    world.consulted()
    appointment = world.book(starts_at=world.at(3))
    world.clock.now = datetime.fromisoformat(appointment["starts_at"]) - timedelta(hours=1)
    assert scheduler("send_reminders") >= 1
    reminder = events(db, "appointment.reminder")[0].payload
    assert (reminder["language"], reminder["direction"]) == ("ar", "rtl")
    assert "مكياج" in " ".join(reminder["instructions"])  # no makeup


def test_each_change_writes_its_event_and_a_refusal_writes_none(world, db):
    world.consulted()
    first = world.book(starts_at=world.at(2))
    world.book(status=422, starts_at=world.at(2))  # refused: the interval rule
    moved = world.caller.patch(f"/v1/appointments/{first['id']}", json={"starts_at": world.at(2, 12)}).get_json()
    world.caller.post(f"/v1/appointments/{moved['id']}/cancel", json={"reason": "patient_request"})
    assert [(e.type, e.subject_id) for e in events(db) if e.type.startswith("appointment.")] == [
        ("appointment.created", first["id"]),
        ("appointment.rescheduled", moved["id"]),
        ("appointment.cancelled", moved["id"]),
    ]
    assert events(db, "appointment.rescheduled")[0].payload["appointment"]["rescheduled_from"] == first["id"]


def test_only_the_lease_holder_acts(world, scheduler, db, app):
    from models import SchedulerLease
    from schedulers import lease

    completed_session(world)
    jobs.register("standby", SchedulerSettings(database_url="unused"), sessions=app.extensions["db_write_sessions"])
    assert jobs.keep_lease(HOLDER) and not jobs.keep_lease("standby")
    assert jobs.propose_follow_ups("standby") == 0 and follow_ups(world) == []
    # The holder crashes: its lease runs out and the standby takes over.
    with app.extensions["db_write_sessions"]() as session:
        session.execute(sa.update(SchedulerLease).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    assert jobs.keep_lease("standby")
    assert jobs.propose_follow_ups(HOLDER) == 0  # the old holder's fence fails
    assert jobs.propose_follow_ups("standby") == 1
    assert lease.current(db).holder == "standby"


def test_a_late_proposal_lapses_48_hours_before_its_slot(world, scheduler):
    completed_session(world)
    world.clock.advance(days=25)  # the scheduler was down: the window opens in three days
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    hold = proposal["hold"]
    assert datetime.fromisoformat(hold["expires_at"]) == datetime.fromisoformat(hold["starts_at"]) - timedelta(hours=48)
    assert datetime.fromisoformat(hold["expires_at"]) < world.clock.now + timedelta(days=7)


def test_the_local_time_of_day_is_kept_across_a_dst_change(world, scheduler):
    """10:00 in London on GMT, then 10:00 on BST (09:00 UTC) four weeks later."""
    world.clock.now = datetime(2027, 3, 15, 8, tzinfo=UTC)
    session = completed_session(world, day=70)  # Monday 15 March 2027, 10:00 GMT
    assert session["starts_at"] == "2027-03-15T10:00:00+00:00"
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    held = datetime.fromisoformat(proposal["hold"]["starts_at"])
    assert held.utcoffset() == timedelta(hours=1) and (held.hour, held.minute) == (10, 0)
    assert datetime(2027, 4, 12, tzinfo=UTC) <= held < datetime(2027, 4, 27, tzinfo=UTC)


def test_a_session_is_proposed_for_once_whoever_asks(world, scheduler, app):
    """A second proposer (another scheduler) for the same session writes nothing; the unique
    appointment_id backs this under real concurrency (tests/process/test_scheduler_process.py)."""
    from booking.services import follow_ups as service

    session = completed_session(world)
    with app.extensions["db_write_sessions"]() as first:
        assert service.propose(first, session["id"]) is not None
        first.commit()
    with app.extensions["db_write_sessions"]() as second:
        assert service.propose(second, session["id"]) is None
    assert len(follow_ups(world)) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("48h,2h", [timedelta(hours=48), timedelta(hours=2)]),
        (" 90m , 24h ,90m", [timedelta(hours=24), timedelta(minutes=90)]),
        ("", []),
    ],
)
def test_reminder_offsets_parse(text, expected):
    from schedulers.config import parse_offsets

    assert parse_offsets(text) == expected


@pytest.mark.parametrize("text", ["48", "2d", "0h", "-1h", "h"])
def test_bad_reminder_offsets_stop_the_scheduler_at_start(text):
    from schedulers.config import SchedulerSettings as Settings

    with pytest.raises(ValueError, match="REMINDER_OFFSETS"):
        Settings.from_environment({"REMINDER_OFFSETS": text})


def test_a_proposal_whose_hold_ran_out_is_expired_before_the_sweep_records_it(clock):
    from booking.services.follow_ups import effective_status
    from models import FollowUp

    hold = Hold(expires_at=clock() + timedelta(minutes=1))
    proposal = FollowUp(status="proposed", hold=hold)
    assert effective_status(proposal) == "proposed"
    hold.expires_at = clock()
    assert effective_status(proposal) == "expired"
    assert effective_status(FollowUp(status="no_slot")) == "no_slot"
    assert effective_status(FollowUp(status="booked", hold=hold)) == "booked"


@pytest.mark.parametrize(
    "zone, session_at, window, held_at",
    [
        # The window is counted in calendar days (rule 5): from the first instant of the 28th local
        # date after the session to the end of the 42nd, and the hold keeps the same wall-clock time.
        (
            "Europe/London",
            "2027-03-02T10:00:00+00:00",
            ("2027-03-30T00:00:00+01:00", "2027-04-14T00:00:00+01:00"),
            "2027-03-30T10:00:00+01:00",
        ),
        (
            "Australia/Sydney",
            "2027-03-16T10:00:00+11:00",
            ("2027-04-13T00:00:00+10:00", "2027-04-28T00:00:00+10:00"),
            "2027-04-13T10:00:00+10:00",
        ),
    ],
)
def test_the_follow_up_window_is_counted_in_local_dates_across_a_dst_change(
    admin, clock, scheduler, zone, session_at, window, held_at
):
    world = build_world(admin, clock, timezone_name=zone)
    clock.now = datetime.fromisoformat(session_at) - timedelta(days=3)
    world.consulted(day=(clock.now - MONDAY).days - 1)
    appointment = world.book(starts_at=session_at)
    clock.now = datetime.fromisoformat(appointment["ends_at"]) + timedelta(minutes=5)
    assert world.caller.post(f"/v1/appointments/{appointment['id']}/complete").status_code == 200
    assert scheduler("propose_follow_ups") == 1
    [proposal] = follow_ups(world)
    assert (proposal["window_starts_at"], proposal["window_ends_at"]) == window
    assert proposal["status"] == "proposed"
    assert proposal["hold"]["starts_at"] == held_at  # same time, four weeks later


# A temporary contraindication (`until`: the first local date it no longer applies) active when the
# window opens: the window starts at its end, keeps its end, or spans its 15 dates from there.
@pytest.mark.parametrize(
    ("until", "window", "held_at"),
    [
        ("2027-02-08", ("2027-02-08T00:00:00+00:00", "2027-02-16T00:00:00+00:00"), "2027-02-08T10:00:00+00:00"),
        ("2027-03-01", ("2027-03-01T00:00:00+00:00", "2027-03-16T00:00:00+00:00"), "2027-03-01T10:00:00+00:00"),
    ],
)
def test_the_follow_up_is_planned_after_a_temporary_contraindication(world, scheduler, until, window, held_at):
    completed_session(world)  # Monday 4 January 10:00: the window is 1 February to the end of 15 February
    entry = {"code": "recent_isotretinoin", "until": until}
    response = world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": [entry]})
    assert response.status_code == 200, response.get_json()
    assert scheduler("propose_follow_ups") == 1
    [proposal] = follow_ups(world)
    assert proposal["status"] == "proposed"
    assert (proposal["window_starts_at"], proposal["window_ends_at"]) == window
    assert proposal["hold"]["starts_at"] == held_at  # the same time of day, on `until` itself


def test_a_temporary_contraindication_ended_before_the_window_changes_nothing(world, scheduler):
    completed_session(world)
    entry = {"code": "eczema_flare", "until": "2027-01-20"}
    response = world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": [entry]})
    assert response.status_code == 200, response.get_json()
    scheduler("propose_follow_ups")
    [proposal] = follow_ups(world)
    assert (proposal["window_starts_at"], proposal["window_ends_at"]) == (
        "2027-02-01T00:00:00+00:00",
        "2027-02-16T00:00:00+00:00",
    )
    assert proposal["hold"]["starts_at"] == "2027-02-01T10:00:00+00:00"


def test_the_follow_up_after_a_temporary_contraindication_in_sydney(admin, clock, scheduler):
    """Tue 16 Mar 2027 10:00 AEDT; the window opens Tue 13 April (AEST): a flare until Tue 20 April moves it."""
    world = build_world(admin, clock, timezone_name="Australia/Sydney")
    clock.now = datetime.fromisoformat("2027-03-13T10:00:00+11:00")
    world.consulted(day=(clock.now - MONDAY).days - 1)
    appointment = world.book(starts_at="2027-03-16T10:00:00+11:00")
    clock.now = datetime.fromisoformat(appointment["ends_at"]) + timedelta(minutes=5)
    assert world.caller.post(f"/v1/appointments/{appointment['id']}/complete").status_code == 200
    entry = {"code": "eczema_flare", "until": "2027-04-20"}
    response = world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": [entry]})
    assert response.status_code == 200, response.get_json()
    assert scheduler("propose_follow_ups") == 1
    [proposal] = follow_ups(world)
    assert (proposal["window_starts_at"], proposal["window_ends_at"]) == (
        "2027-04-20T00:00:00+10:00",
        "2027-04-28T00:00:00+10:00",
    )
    assert proposal["hold"]["starts_at"] == "2027-04-20T10:00:00+10:00"
