"""Booking: holds, appointments and the clinical rules through the API.

Every refusal is checked on each of the four booking paths (a direct booking, a
hold, booking from a hold, a reschedule) and must leave nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa

from models import Appointment, Claim, Course, Hold, PastSession, TreatmentType

from ..booking_world import MONDAY, World, any_time_policy, build_world, patient
from ..helpers import assert_problem


@pytest.fixture(autouse=True)
def _clinical_rules_at_any_time(admin):
    """These tests pin the clinical rules at times of their choosing; the booking policy's are
    tests/api/test_booking_policy.py."""
    any_time_policy(admin)


def test_book_a_session_directly(world):
    world.consulted()
    appointment = world.book()
    assert appointment["status"] == "booked"
    assert appointment["starts_at"] == "2027-01-04T10:00:00+00:00"
    assert appointment["procedure_starts_at"] == "2027-01-04T10:30:00+00:00"
    assert appointment["ends_at"] == "2027-01-04T11:10:00+00:00"


def test_the_same_room_twice_is_a_409_naming_the_clash(world):
    world.consulted()
    first = world.book()
    other = world.new_patient(name="Other", email="o@example.com")
    world.consulted(other["id"])
    body = assert_problem(
        world.caller.post(
            "/v1/appointments",
            json=world.slot(
                patient_id=other["id"], starts_at=world.at(hour=10, minute=30), practitioner_id=world.practitioner["id"]
            ),
        ),
        409,
        "slot_unavailable",
    )
    assert any(c.get("appointment_id") == first["id"] for c in body["conflicts"])
    assert "Pat" not in str(body["conflicts"])


# =========================================================================== helpers

_serial = count(1)
RESCHEDULABLE = ("clinic_id", "practitioner_id", "room_id", "starts_at", "procedure_starts_at")
WEEK = range(6)  # Monday to Saturday, like the world's clinic and practitioner


def at(day: int = 0, hour: int = 10, minute: int = 0) -> str:
    return (MONDAY + timedelta(days=day, hours=hour, minutes=minute)).isoformat()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def later(text: str, **delta) -> str:
    return (instant(text) + timedelta(**delta)).isoformat()


def ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def week(clinic_id: str, start: str = "09:00", end: str = "17:00", days=WEEK) -> list[dict]:
    return [{"clinic_id": clinic_id, "weekday": d, "start": start, "end": end} for d in days]


def set_hours(w: World, practitioner: dict, entries: list[dict]) -> None:
    ok(w.caller.put(f"/v1/practitioners/{practitioner['id']}/working-hours", json=entries))


def practitioner(w: World, clinic: dict | None = None, **overrides) -> dict:
    """Another practitioner, qualified for the world's three types, 09:00-17:00 Monday to Saturday."""
    clinic = clinic or w.clinic
    p = w.caller.make_practitioner(
        [clinic["id"]],
        **{
            "name": f"Dr {next(_serial)}",
            "treatment_type_ids": [w.consultation["id"], w.microneedling["id"], w.review["id"]],
            **overrides,
        },
    )
    set_hours(w, p, week(clinic["id"]))
    return p


@dataclass
class Place:
    clinic: dict
    room: dict
    practitioner: dict


def clinic(w: World, timezone_name: str = "Europe/London", **overrides) -> Place:
    """A second clinic of the organization with a needling room and its own practitioner."""
    c = w.caller.make_clinic(name=f"Clinic {next(_serial)}", timezone=timezone_name, **overrides)
    room = w.caller.make_room(c["id"], name="Room A")
    return Place(c, room, practitioner(w, c))


def elsewhere(place: Place) -> dict:
    return {"clinic_id": place.clinic["id"], "room_id": place.room["id"], "practitioner_id": place.practitioner["id"]}


def patch_type(w: World, treatment_type: dict, **changes) -> dict:
    return ok(w.caller.patch(f"/v1/treatment-types/{treatment_type['id']}", json=changes))


def past_session(w: World, performed_at: str, patient_id: str | None = None, treatment_type=None, **extra):
    return ok(
        w.caller.post(
            f"/v1/patients/{patient_id or w.patient['id']}/past-sessions",
            json={
                "treatment_type_id": (treatment_type or w.microneedling)["id"],
                "performed_at": performed_at,
                **extra,
            },
        ),
        201,
    )


def course(w: World, **overrides) -> dict:
    return w.caller.make_course(w.patient["id"], w.microneedling["id"], **overrides)


def get(w: World, path: str) -> dict:
    return ok(w.caller.get(path))


def act(w: World, appointment: dict, action: str, **body):
    return w.caller.post(f"/v1/appointments/{appointment['id']}/{action}", json=body or None)


def reschedule(w: World, appointment: dict, **changes):
    return w.caller.patch(f"/v1/appointments/{appointment['id']}", json=changes)


def written(db, w: World) -> dict:
    """Everything the booking services write for the organization, as plain values."""
    org = w.caller.organization_id

    def rows(query):
        return sorted(tuple(str(v) for v in row) for row in db.execute(query).all())

    return {
        "appointments": rows(
            sa.select(Appointment.id, Appointment.status, Appointment.starts_at, Appointment.cancel_reason).where(
                Appointment.organization_id == org
            )
        ),
        "holds": rows(
            sa.select(Hold.id, Hold.outcome, Hold.appointment_id, Hold.expires_at).where(Hold.organization_id == org)
        ),
        "claims": rows(
            sa.select(Claim.resource, Claim.starts_at, Claim.ends_at, Claim.appointment_id, Claim.hold_id).where(
                Claim.organization_id == org
            )
        ),
        "courses": rows(
            sa.select(Course.id, Course.sessions_completed, Course.status).where(Course.organization_id == org)
        ),
        "past_sessions": rows(sa.select(PastSession.id).where(PastSession.organization_id == org)),
        "listed": sorted((a["id"], a["status"]) for a in get(w, "/v1/appointments?limit=200")["data"]),
    }


def refused(db, w: World, send: Callable, status: int, code: str) -> dict:
    """`send()` is refused with this status and code, and writes nothing."""
    before = written(db, w)
    body = assert_problem(send(), status, code)
    assert written(db, w) == before
    return body


def conflict_resources(body: dict) -> set[str]:
    return {c["resource"] for c in body["conflicts"]}


# =========================================================================== every refusal on every path

PATHS = ("direct", "hold", "from_hold", "reschedule")
NOT_FROM_HOLD = ("direct", "hold", "reschedule")
NEW_ONLY = ("direct", "hold")


@dataclass
class Case:
    """A booking of `target` (slot overrides) that is refused, once `break_` has run if given.

    On the from_hold path the hold is placed before `break_`; on the reschedule
    path the appointment moved is booked before it, at `origin` (by default the
    target one day later, with the world's clinic, practitioner and room).
    """

    target: dict = field(default_factory=dict)
    break_: Callable | None = None
    check: Callable[[dict], None] = lambda body: None
    origin: dict | None = None


def _origin(w: World, target: dict) -> dict:
    kept = {k: v for k, v in target.items() if k in ("patient_id", "treatment_type_id", "area", "course_id")}
    return {**kept, "starts_at": later(target.get("starts_at", w.at()), days=1)}


def _conflicts(*resources, hold=None):
    def check(body):
        assert conflict_resources(body) == set(resources), body
        if hold is not None:
            assert {c.get("hold_id") for c in body["conflicts"]} == {hold()["id"]}, body

    return check


def _interval(earliest: str):
    def check(body):
        assert instant(body["earliest_start"]) == instant(earliest), body

    return check


# --- slot_unavailable: the target itself is taken


def room_taken(w):
    w.consulted()
    p2, other = practitioner(w), patient(w)
    return Case(break_=lambda: w.book(patient_id=other["id"], practitioner_id=p2["id"]), check=_conflicts("room"))


def practitioner_taken(w):
    w.consulted()
    other = patient(w)
    return Case(
        break_=lambda: w.book(patient_id=other["id"], room_id=w.rooms[1]["id"]), check=_conflicts("practitioner")
    )


def patient_taken(w):
    w.consulted()
    p2 = practitioner(w)
    return Case(
        break_=lambda: w.book(treatment_type_id=w.review["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"]),
        check=_conflicts("patient"),
    )


def held_by_someone_else(w):
    w.consulted()
    other, held = patient(w), {}
    return Case(
        break_=lambda: held.update(w.hold(patient_id=other["id"])),
        check=_conflicts("room", "practitioner", hold=lambda: held),
    )


# --- slot_unavailable on every path: the treatment grows into a neighbour after the hold


def _longer(w, neighbour: Callable):
    def break_():
        neighbour()
        patch_type(w, w.microneedling, procedure_minutes=45)  # ends 11:25, room until 11:35

    return break_


def room_taken_after_lengthening(w):
    w.consulted()
    p2, other = practitioner(w), patient(w)
    return Case(
        break_=_longer(
            w, lambda: w.book(patient_id=other["id"], practitioner_id=p2["id"], starts_at=w.at(hour=11, minute=20))
        ),
        check=_conflicts("room"),
    )


def practitioner_taken_after_lengthening(w):
    w.consulted()
    other = patient(w)
    return Case(
        break_=_longer(
            w, lambda: w.book(patient_id=other["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=11, minute=15))
        ),
        check=_conflicts("practitioner"),
    )


def patient_taken_after_lengthening(w):
    w.consulted()
    p2 = practitioner(w)
    return Case(
        break_=_longer(
            w,
            lambda: w.book(
                treatment_type_id=w.review["id"],
                practitioner_id=p2["id"],
                room_id=w.rooms[1]["id"],
                starts_at=w.at(hour=11, minute=10),
            ),
        ),
        check=_conflicts("patient"),
    )


def held_by_someone_else_after_lengthening(w):
    w.consulted()
    p2, other, held = practitioner(w), patient(w), {}
    return Case(
        break_=_longer(
            w,
            lambda: held.update(
                w.hold(patient_id=other["id"], practitioner_id=p2["id"], starts_at=w.at(hour=11, minute=20))
            ),
        ),
        check=_conflicts("room", hold=lambda: held),
    )


# --- interval_too_short


def past_session_ten_days_before(w):
    # Not from a hold: a past session inside a held or booked session's interval is itself
    # refused (test_a_past_session_inside_a_live_holds_interval_is_refused_naming_it).
    w.consulted()
    return Case(
        break_=lambda: past_session(w, w.at(-10)), check=_interval(at(18, hour=0)), origin={"starts_at": w.at(40)}
    )


def session_ten_days_later_at_another_clinic(w):
    w.consulted()
    b = clinic(w)
    return Case(
        break_=lambda: w.book(**elsewhere(b), starts_at=w.at(10)),
        check=_interval(at(38, hour=0)),
        origin={"starts_at": w.at(40)},
    )


def own_live_hold_at_another_clinic(w):
    w.consulted()
    b = clinic(w)
    return Case(
        break_=lambda: w.hold(**elsewhere(b), starts_at=w.at(10)),
        check=_interval(at(38, hour=0)),
        origin={"starts_at": w.at(40)},
    )


def interval_raised_over_another_clinics_session(w):
    w.consulted()
    b = clinic(w)

    def break_():
        w.book(**elsewhere(b), starts_at=w.at(30))
        patch_type(w, w.microneedling, min_interval_days=35)

    return Case(break_=break_, check=_interval(at(65, hour=0)))


# --- numbing_lead_too_short


def procedure_too_early(w):
    w.consulted()

    def check(body):
        assert instant(body["earliest_procedure_start"]) == instant(at(hour=10, minute=30))

    return Case(target={"procedure_starts_at": w.at(hour=10, minute=20)}, check=check)


def numbing_lengthened(w):
    w.consulted()

    def check(body):
        assert instant(body["earliest_procedure_start"]) == instant(at(hour=10, minute=40))

    return Case(
        target={"procedure_starts_at": w.at(hour=10, minute=30)},
        break_=lambda: patch_type(w, w.microneedling, numbing_minutes=40),
        check=check,
    )


# --- consultation_required


def never_consulted(w):
    return Case()


def consultation_booked_not_completed(w):
    w.book(treatment_type_id=w.consultation["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=9))
    return Case(target={"starts_at": w.at(1)})


def consultation_validity_shortened(w):
    w.consulted(day=-10)
    return Case(break_=lambda: patch_type(w, w.microneedling, consultation_valid_days=5))


def consultation_too_old_for_the_date(w):
    w.consulted(day=-10)  # counts for 180 days: until day 170
    return Case(target={"starts_at": w.at(175)}, origin={"starts_at": w.at()})


# --- contraindicated


def contraindication_recorded(w):
    w.consulted()

    def check(body):
        assert body["contraindications"] == ["rosacea"]
        assert "rosacea" in body["detail"]

    return Case(
        break_=lambda: ok(
            w.caller.patch(
                f"/v1/patients/{w.patient['id']}", json={"contraindications": ["rosacea"], "assessed_by": "Dr Who"}
            )
        ),
        check=check,
    )


# --- course_complete


def cap_reached_by_booked_and_past_sessions(w):
    w.consulted()
    c = course(w, max_sessions=2)
    past_session(w, w.at(-60), course_id=c["id"])

    def check(body):
        assert body["max_sessions"] == 2 and body["sessions"] == 2

    return Case(target={"starts_at": w.at(28)}, break_=lambda: w.book(), check=check)


def cap_lowered_to_what_is_booked(w):
    w.consulted()
    c = course(w, max_sessions=4)
    past_session(w, w.at(-60), course_id=c["id"])

    def break_():
        assert w.book(starts_at=w.at(40))["course_id"] == c["id"]
        ok(w.caller.patch(f"/v1/courses/{c['id']}", json={"max_sessions": 2}))

    def check(body):
        assert body["max_sessions"] == 2 and body["sessions"] == 2

    return Case(break_=break_, check=check)


def ageing_twice_a_year(w):
    w.consulted()
    c = course(w, indication="ageing")
    assert c["max_sessions_per_365_days"] == 2

    def break_():
        past_session(w, w.at(-330), course_id=c["id"])
        past_session(w, w.at(-100), course_id=c["id"])

    def check(body):
        assert body["max_sessions_per_365_days"] == 2

    return Case(break_=break_, check=check)


# --- outside_working_hours


def before_the_practitioners_day(w):
    w.consulted()  # the clinic opens at 08:00, the practitioner starts at 09:00
    return Case(target={"starts_at": w.at(hour=8, minute=30)}, origin={"starts_at": w.at(1)})


def practitioners_hours_shortened(w):
    w.consulted()
    return Case(break_=lambda: set_hours(w, w.practitioner, week(w.clinic["id"], start="12:00")))


def clinic_opens_later(w):
    w.consulted()
    hours = [{"weekday": d, "start": "12:00", "end": "20:00"} for d in WEEK]
    return Case(break_=lambda: ok(w.caller.patch(f"/v1/clinics/{w.clinic['id']}", json={"opening_hours": hours})))


def clinic_closed_that_day(w):
    w.consulted()
    closure = [{"start_date": "2027-01-04", "end_date": "2027-01-04", "reason": "Flood"}]
    return Case(break_=lambda: ok(w.caller.patch(f"/v1/clinics/{w.clinic['id']}", json={"closures": closure})))


def practitioner_takes_time_off(w):
    w.consulted()
    return Case(
        break_=lambda: ok(
            w.caller.post(
                f"/v1/practitioners/{w.practitioner['id']}/time-off",
                json={"starts_at": w.at(hour=11), "ends_at": w.at(hour=12), "reason": "Dentist"},
            ),
            201,
        )
    )


# --- not_qualified


def _reason(reason):
    def check(body):
        assert body["reason"] == reason, body

    return check


def practitioner_loses_qualification(w):
    w.consulted()
    return Case(
        break_=lambda: ok(
            w.caller.patch(
                f"/v1/practitioners/{w.practitioner['id']}",
                json={"treatment_type_ids": [w.consultation["id"], w.review["id"]]},
            )
        ),
        check=_reason("practitioner_treatment_type"),
    )


def room_loses_capability(w):
    w.consulted()
    return Case(
        break_=lambda: ok(w.caller.patch(f"/v1/rooms/{w.rooms[0]['id']}", json={"capabilities": []})),
        check=_reason("room_capability"),
    )


def practitioner_moves_to_another_clinic(w):
    w.consulted()
    b = clinic(w)

    def break_():
        both = [w.clinic["id"], b.clinic["id"]]
        ok(w.caller.patch(f"/v1/practitioners/{w.practitioner['id']}", json={"clinic_ids": both}))
        set_hours(w, w.practitioner, week(b.clinic["id"]))
        ok(w.caller.patch(f"/v1/practitioners/{w.practitioner['id']}", json={"clinic_ids": [b.clinic["id"]]}))

    return Case(break_=break_, check=_reason("practitioner_clinic"))


def practitioner_of_another_clinic(w):
    w.consulted()
    b = clinic(w)
    return Case(target={"practitioner_id": b.practitioner["id"]}, check=_reason("practitioner_clinic"))


def room_without_needling(w):
    w.consulted()
    bare = w.caller.make_room(w.clinic["id"], name="Office", capabilities=[])
    return Case(target={"room_id": bare["id"]}, check=_reason("room_capability"))


def practitioner_not_qualified(w):
    w.consulted()
    p2 = practitioner(w, treatment_type_ids=[w.consultation["id"], w.review["id"]])
    return Case(target={"practitioner_id": p2["id"]}, check=_reason("practitioner_treatment_type"))


# --- area_not_allowed


def area_outside_the_list(w):
    w.consulted()

    def check(body):
        assert body["area"] == "scalp" and "scalp" not in body["allowed_areas"]

    return Case(target={"area": "scalp"}, check=check)


def area_removed_from_the_type(w):
    w.consulted()

    def check(body):
        assert body["area"] == "thighs" and body["allowed_areas"] == ["face", "neck"]

    return Case(
        target={"area": "thighs"},
        check=check,
        break_=lambda: patch_type(w, w.microneedling, allowed_areas=["face", "neck"]),
    )


REFUSALS = [
    (409, "slot_unavailable", room_taken, NOT_FROM_HOLD),
    (409, "slot_unavailable", practitioner_taken, NOT_FROM_HOLD),
    (409, "slot_unavailable", patient_taken, NOT_FROM_HOLD),
    (409, "slot_unavailable", held_by_someone_else, NOT_FROM_HOLD),
    (409, "slot_unavailable", room_taken_after_lengthening, PATHS),
    (409, "slot_unavailable", practitioner_taken_after_lengthening, PATHS),
    (409, "slot_unavailable", patient_taken_after_lengthening, PATHS),
    (409, "slot_unavailable", held_by_someone_else_after_lengthening, PATHS),
    (422, "interval_too_short", past_session_ten_days_before, NOT_FROM_HOLD),
    (422, "interval_too_short", session_ten_days_later_at_another_clinic, NOT_FROM_HOLD),
    (422, "interval_too_short", own_live_hold_at_another_clinic, NOT_FROM_HOLD),
    (422, "interval_too_short", interval_raised_over_another_clinics_session, PATHS),
    (422, "numbing_lead_too_short", procedure_too_early, NOT_FROM_HOLD),
    (422, "numbing_lead_too_short", numbing_lengthened, PATHS),
    (422, "consultation_required", never_consulted, NEW_ONLY),
    (422, "consultation_required", consultation_booked_not_completed, NEW_ONLY),
    (422, "consultation_required", consultation_validity_shortened, PATHS),
    (422, "consultation_required", consultation_too_old_for_the_date, NOT_FROM_HOLD),
    (422, "contraindicated", contraindication_recorded, PATHS),
    (422, "course_complete", cap_reached_by_booked_and_past_sessions, NEW_ONLY),
    (422, "course_complete", cap_lowered_to_what_is_booked, PATHS),
    (422, "course_complete", ageing_twice_a_year, PATHS),
    (422, "outside_working_hours", before_the_practitioners_day, NOT_FROM_HOLD),
    (422, "outside_working_hours", practitioners_hours_shortened, PATHS),
    (422, "outside_working_hours", clinic_opens_later, PATHS),
    (422, "outside_working_hours", clinic_closed_that_day, PATHS),
    (422, "outside_working_hours", practitioner_takes_time_off, PATHS),
    (422, "not_qualified", practitioner_loses_qualification, PATHS),
    (422, "not_qualified", room_loses_capability, PATHS),
    (422, "not_qualified", practitioner_moves_to_another_clinic, PATHS),
    (422, "not_qualified", practitioner_of_another_clinic, NOT_FROM_HOLD),
    (422, "not_qualified", room_without_needling, NOT_FROM_HOLD),
    (422, "not_qualified", practitioner_not_qualified, NOT_FROM_HOLD),
    (422, "area_not_allowed", area_outside_the_list, NEW_ONLY),
    (422, "area_not_allowed", area_removed_from_the_type, PATHS),
]


@pytest.mark.parametrize(
    "status, code, scenario, path",
    [
        pytest.param(status, code, scenario, path, id=f"{code}-{scenario.__name__}-{path}")
        for status, code, scenario, paths in REFUSALS
        for path in paths
    ],
)
def test_a_refusal_on_each_booking_path_writes_nothing(world, db, status, code, scenario, path):
    case = scenario(world)
    hold = old = None
    if path == "from_hold":
        hold = world.hold(**case.target)
    elif path == "reschedule":
        old = world.book(**(case.origin or _origin(world, case.target)))
    if case.break_:
        case.break_()
    slot = world.slot(**case.target)
    send = {
        "direct": lambda: world.caller.post("/v1/appointments", json=slot),
        "hold": lambda: world.caller.post("/v1/holds", json=slot),
        "from_hold": lambda: world.caller.post("/v1/appointments", json={"hold_id": hold and hold["id"]}),
        "reschedule": lambda: reschedule(world, old, **{k: slot[k] for k in RESCHEDULABLE if k in slot}),
    }[path]
    body = refused(db, world, send, status, code)
    case.check(body)
    if hold:
        assert get(world, f"/v1/holds/{hold['id']}")["status"] == "active"
    if old:
        assert get(world, f"/v1/appointments/{old['id']}")["status"] == "booked"


# The scenarios whose target is refused as it stands, with no change made.
REFUSED_AS_IS = {
    procedure_too_early,
    never_consulted,
    consultation_booked_not_completed,
    consultation_too_old_for_the_date,
    before_the_practitioners_day,
    practitioner_of_another_clinic,
    room_without_needling,
    practitioner_not_qualified,
    area_outside_the_list,
}


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(scenario, id=scenario.__name__) for _, _, scenario, _ in REFUSALS if scenario not in REFUSED_AS_IS],
)
def test_without_the_change_the_same_booking_succeeds(world, scenario):
    """The control of each refusal above: the target is bookable until `break_` runs."""
    case = scenario(world)
    assert case.break_ is not None
    appointment = world.book(**case.target)
    assert appointment["status"] == "booked"


# =========================================================================== the rules, one by one


def test_interval_counts_sessions_at_every_clinic_of_the_organization(world, db):
    world.consulted()
    b = clinic(world)
    world.book()
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(**elsewhere(b), starts_at=world.at(26, hour=12))),
        422,
        "interval_too_short",
    )
    # Counted in calendar days: any time on the 28th date, from its midnight.
    assert instant(body["earliest_start"]) == instant(at(28, hour=0))
    assert world.book(**elsewhere(b), starts_at=world.at(28, hour=9))["clinic_id"] == b.clinic["id"]


def test_interval_counts_the_patients_live_holds_but_not_expired_ones(world, db, clock):
    world.consulted()
    world.hold()
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(10))),
        422,
        "interval_too_short",
    )
    assert instant(body["earliest_start"]) == instant(at(28, hour=0))
    clock.advance(minutes=10)  # the hold lapses
    world.book(starts_at=world.at(10))


def test_interval_is_measured_in_both_directions(world, db):
    world.consulted()
    world.book(starts_at=world.at(30))
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(5))),
        422,
        "interval_too_short",
    )
    assert instant(body["earliest_start"]) == instant(at(58, hour=0))
    world.book(starts_at=world.at(2, hour=15))  # on the 28th date before the other, a later hour


def test_a_consultation_booked_but_not_completed_does_not_count_until_completed(world, db, clock):
    consultation = world.book(
        treatment_type_id=world.consultation["id"], room_id=world.rooms[1]["id"], starts_at=world.at(hour=9)
    )
    refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(1))),
        422,
        "consultation_required",
    )
    clock.now = instant(world.at(hour=9, minute=30))
    assert ok(act(world, consultation, "complete"))["status"] == "completed"
    assert world.book(starts_at=world.at(1))["status"] == "booked"


def test_a_past_consultation_counts(world, db):
    refused(db, world, lambda: world.caller.post("/v1/appointments", json=world.slot()), 422, "consultation_required")
    world.consulted(day=-30)
    assert world.book()["status"] == "booked"


def test_a_contraindication_blocks_sessions_but_not_consultations_or_reviews(world, db):
    ok(
        world.caller.patch(
            f"/v1/patients/{world.patient['id']}", json={"contraindications": ["active_acne", "very_sensitive_skin"]}
        )
    )
    world.consulted()
    body = refused(db, world, lambda: world.caller.post("/v1/appointments", json=world.slot()), 422, "contraindicated")
    assert body["contraindications"] == ["active_acne", "very_sensitive_skin"]
    refused(db, world, lambda: world.caller.post("/v1/holds", json=world.slot()), 422, "contraindicated")
    assert world.book(treatment_type_id=world.consultation["id"])["status"] == "booked"
    assert world.book(treatment_type_id=world.review["id"], starts_at=world.at(hour=12))["status"] == "booked"
    ok(world.caller.patch(f"/v1/patients/{world.patient['id']}", json={"contraindications": []}))
    assert world.book(starts_at=world.at(1))["status"] == "booked"


def test_the_ageing_cap_counts_a_rolling_year(world, db):
    world.consulted()
    c = course(world, indication="ageing")
    past_session(world, world.at(-330), course_id=c["id"])
    past_session(world, world.at(-100), course_id=c["id"])
    body = refused(db, world, lambda: world.caller.post("/v1/appointments", json=world.slot()), 422, "course_complete")
    assert body["max_sessions_per_365_days"] == 2
    # 370 days after the first: the rolling year holds only two.
    assert world.book(starts_at=world.at(40))["course_id"] == c["id"]


def test_an_area_is_checked_when_booking_from_a_hold_too(world, db):
    world.consulted()
    hold = world.hold(area="face")
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json={"hold_id": hold["id"], "area": "hands"}),
        422,
        "area_not_allowed",
    )
    assert body["area"] == "hands"
    booked = ok(world.caller.post("/v1/appointments", json={"hold_id": hold["id"], "area": "neck"}), 201)
    assert booked["area"] == "neck"


def test_outside_the_clinics_hours_while_the_practitioner_works(world, db):
    world.consulted()
    set_hours(world, world.practitioner, week(world.clinic["id"], start="07:00", end="21:00"))
    refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(1, hour=7, minute=30))),
        422,
        "outside_working_hours",
    )
    refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(1, hour=19))),
        422,
        "outside_working_hours",
    )  # ends 20:10
    assert world.book(starts_at=world.at(1, hour=18, minute=50))["ends_at"] == "2027-01-05T20:00:00+00:00"


# =========================================================================== holds


def test_a_hold_is_active_until_its_expiry_then_expired(world, clock):
    world.consulted()
    hold = world.hold()
    assert hold["status"] == "active" and hold["source"] == "frontend"
    assert instant(hold["expires_at"]) == instant(world.at(hour=8, minute=10))
    clock.advance(minutes=9, seconds=59)
    assert get(world, f"/v1/holds/{hold['id']}")["status"] == "active"
    clock.advance(seconds=1)
    assert get(world, f"/v1/holds/{hold['id']}")["status"] == "expired"


def test_a_hold_is_live_or_lapsed_alike_on_a_loaded_hold_and_in_sql(world, db, clock):
    review = {"treatment_type_id": world.review["id"]}
    ran_out = world.hold(starts_at=world.at(hour=10), **review)
    released = world.hold(starts_at=world.at(hour=11), **review)
    assert world.caller.delete(f"/v1/holds/{released['id']}").status_code == 204
    clock.advance(minutes=10)
    live = world.hold(starts_at=world.at(hour=12), **review)
    now = clock.now
    holds = db.scalars(sa.select(Hold).execution_options(populate_existing=True)).all()
    for rule, expected in (("live", {live["id"]}), ("lapsed", {ran_out["id"]})):
        assert set(db.scalars(sa.select(Hold.id).where(getattr(Hold, rule)(now)))) == expected
        assert {h.id for h in holds if getattr(h, rule)(now)} == expected


def test_an_expired_hold_claims_nothing(world, clock):
    world.consulted()
    hold = world.hold()
    other = patient(world)
    assert world.caller.post("/v1/appointments", json=world.slot(patient_id=other["id"])).status_code == 409
    clock.advance(minutes=10)
    # No sweep has run: the lapsed hold's claims are still stored, yet count for nothing.
    appointment = world.book(patient_id=other["id"])
    assert (appointment["room_id"], appointment["starts_at"]) == (hold["room_id"], hold["starts_at"])


def test_booking_from_an_expired_hold_is_410(world, db, clock):
    world.consulted()
    hold = world.hold()
    clock.advance(minutes=11)
    body = refused(
        db, world, lambda: world.caller.post("/v1/appointments", json={"hold_id": hold["id"]}), 410, "hold_expired"
    )
    assert body["hold_id"] == hold["id"]


def test_booking_from_a_hold_twice_is_an_invalid_transition(world, db):
    world.consulted()
    hold = world.hold(area="face")
    appointment = ok(world.caller.post("/v1/appointments", json={"hold_id": hold["id"]}), 201)
    assert appointment["hold_id"] == hold["id"] and appointment["area"] == "face"
    assert (appointment["starts_at"], appointment["room_id"]) == (hold["starts_at"], hold["room_id"])
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json={"hold_id": hold["id"]}),
        409,
        "invalid_transition",
    )
    assert body["appointment_id"] == appointment["id"]
    shown = get(world, f"/v1/holds/{hold['id']}")
    assert (shown["status"], shown["appointment_id"]) == ("booked", appointment["id"])


def test_releasing_a_hold_frees_its_slot(world, db):
    world.consulted()
    hold = world.hold()
    other = patient(world)
    assert world.caller.post("/v1/appointments", json=world.slot(patient_id=other["id"])).status_code == 409
    assert world.caller.delete(f"/v1/holds/{hold['id']}").status_code == 204
    assert get(world, f"/v1/holds/{hold['id']}")["status"] == "released"
    refused(db, world, lambda: world.caller.post("/v1/appointments", json={"hold_id": hold["id"]}), 410, "hold_expired")
    assert world.book(patient_id=other["id"])["status"] == "booked"


def test_a_hold_of_another_organization_is_404(world, other):
    world.consulted()
    hold = world.hold()
    assert_problem(other.get(f"/v1/holds/{hold['id']}"), 404, "not_found")
    assert_problem(other.post("/v1/appointments", json={"hold_id": hold["id"]}), 404, "not_found")
    assert get(world, f"/v1/holds/{hold['id']}")["status"] == "active"


# =========================================================================== reschedule


def test_a_reschedule_is_a_new_appointment_replacing_the_cancelled_old_one(world):
    world.consulted()
    old = world.book()
    new = ok(reschedule(world, old, starts_at=world.at(hour=14), room_id=world.rooms[1]["id"]))
    assert new["id"] != old["id"] and new["rescheduled_from"] == old["id"]
    assert (new["status"], new["starts_at"], new["procedure_starts_at"], new["room_id"]) == (
        "booked",
        "2027-01-04T14:00:00+00:00",
        "2027-01-04T14:30:00+00:00",
        world.rooms[1]["id"],
    )
    gone = get(world, f"/v1/appointments/{old['id']}")
    assert (gone["status"], gone["cancel_reason"]) == ("cancelled", "rescheduled")
    # The old slot is free again.
    assert world.book(patient_id=patient(world)["id"])["status"] == "booked"


def test_a_reschedule_may_overlap_the_appointment_it_replaces(world):
    world.consulted()
    old = world.book()
    new = ok(reschedule(world, old, starts_at=world.at(hour=10, minute=20)))
    assert new["rescheduled_from"] == old["id"] and new["room_id"] == old["room_id"]


def test_rescheduling_onto_a_busy_slot_leaves_the_old_appointment_booked(world, db):
    world.consulted()
    old = world.book()
    other = patient(world)
    world.book(patient_id=other["id"], starts_at=world.at(hour=14))
    refused(db, world, lambda: reschedule(world, old, starts_at=world.at(hour=14, minute=30)), 409, "slot_unavailable")
    assert get(world, f"/v1/appointments/{old['id']}")["status"] == "booked"


def test_rescheduling_a_cancelled_or_completed_appointment_is_an_invalid_transition(world, db, clock):
    world.consulted()
    cancelled = world.book()
    ok(act(world, cancelled, "cancel", reason="patient_request"))
    refused(db, world, lambda: reschedule(world, cancelled, starts_at=world.at(hour=14)), 409, "invalid_transition")
    done = world.book(treatment_type_id=world.review["id"], starts_at=world.at(hour=9))
    clock.now = instant(world.at(hour=9, minute=20))
    ok(act(world, done, "complete"))
    refused(db, world, lambda: reschedule(world, done, starts_at=world.at(hour=15)), 409, "invalid_transition")


def test_a_reschedule_keeps_the_chain(world):
    world.consulted()
    first = world.book()
    second = ok(reschedule(world, first, starts_at=world.at(1)))
    third = ok(reschedule(world, second, starts_at=world.at(2)))
    assert third["rescheduled_from"] == second["id"] and second["rescheduled_from"] == first["id"]
    statuses = {a["id"]: a["status"] for a in get(world, "/v1/appointments")["data"]}
    assert statuses == {first["id"]: "cancelled", second["id"]: "cancelled", third["id"]: "booked"}


# =========================================================================== lifecycle


def test_cancel_takes_a_reason_from_the_list(world, db):
    world.consulted()
    appointment = world.book()
    for reason in ("bored", "rescheduled", ""):
        body = refused(
            db, world, lambda reason=reason: act(world, appointment, "cancel", reason=reason), 422, "validation_error"
        )
        assert "reason" in body["errors"]
    refused(
        db,
        world,
        lambda: world.caller.post(f"/v1/appointments/{appointment['id']}/cancel", json={}),
        422,
        "validation_error",
    )
    cancelled = ok(act(world, appointment, "cancel", reason="patient_unwell", note="Flu"))
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["cancel_note"]) == (
        "cancelled",
        "patient_unwell",
        "Flu",
    )
    assert cancelled["cancelled_at"] is not None
    refused(db, world, lambda: act(world, appointment, "cancel", reason="other"), 409, "invalid_transition")


def test_check_in_opens_two_hours_before_then_complete(world, db, clock):
    world.consulted()
    appointment = world.book(starts_at=world.at(hour=11))
    refused(db, world, lambda: act(world, appointment, "check-in"), 409, "invalid_transition")
    clock.now = instant(world.at(hour=9))
    checked = ok(act(world, appointment, "check-in"))
    assert checked["status"] == "checked_in" and instant(checked["checked_in_at"]) == clock.now
    refused(db, world, lambda: act(world, appointment, "complete"), 409, "invalid_transition")  # before start
    refused(db, world, lambda: act(world, appointment, "no-show"), 409, "invalid_transition")
    clock.now = instant(world.at(hour=12, minute=10))
    done = ok(act(world, appointment, "complete"))
    assert done["status"] == "completed" and instant(done["completed_at"]) == clock.now


@pytest.mark.parametrize(
    "first, then",
    [
        ("cancel", "complete"),
        ("cancel", "check-in"),
        ("cancel", "no-show"),
        ("complete", "check-in"),
        ("complete", "cancel"),
        ("complete", "no-show"),
        ("complete", "complete"),
        ("no-show", "complete"),
        ("no-show", "check-in"),
        ("no-show", "cancel"),
        ("check-in", "check-in"),
        ("check-in", "no-show"),
    ],
)
def test_invalid_transitions_are_409(world, db, clock, first, then):
    world.consulted()
    appointment = world.book()
    clock.now = instant(world.at(hour=10, minute=5))
    ok(act(world, appointment, first, **({"reason": "clinic_request"} if first == "cancel" else {})))
    status = get(world, f"/v1/appointments/{appointment['id']}")["status"]
    body = refused(
        db,
        world,
        lambda: act(world, appointment, then, **({"reason": "clinic_request"} if then == "cancel" else {})),
        409,
        "invalid_transition",
    )
    assert body["current_status"] == status


def test_no_show_and_complete_only_once_the_start_has_passed(world, db, clock):
    world.consulted()
    appointment = world.book()
    refused(db, world, lambda: act(world, appointment, "no-show"), 409, "invalid_transition")
    refused(db, world, lambda: act(world, appointment, "complete"), 409, "invalid_transition")
    clock.now = instant(world.at(hour=9, minute=59))
    refused(db, world, lambda: act(world, appointment, "no-show"), 409, "invalid_transition")
    clock.now = instant(world.at(hour=10))
    assert ok(act(world, appointment, "no-show"))["status"] == "no_show"


def test_completing_sessions_counts_them_and_completes_the_course_at_its_cap(world, db, clock):
    world.consulted()
    c = course(world, max_sessions=2)
    first = world.book()
    assert first["course_id"] == c["id"]
    clock.now = instant(world.at(hour=11, minute=10))
    ok(act(world, first, "complete"))
    shown = get(world, f"/v1/courses/{c['id']}")
    assert (shown["sessions_completed"], shown["status"]) == (1, "active")
    assert instant(shown["next_earliest_start"]) == instant(at(28, hour=0))
    second = world.book(starts_at=world.at(28))
    assert second["course_id"] == c["id"]
    clock.now = instant(world.at(28, hour=12))
    ok(act(world, second, "complete"))
    shown = get(world, f"/v1/courses/{c['id']}")
    assert (shown["sessions_completed"], shown["status"]) == (2, "complete")
    assert shown["next_earliest_start"] is None
    refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(60), course_id=c["id"])),
        422,
        "course_complete",
    )


def test_a_second_active_course_of_one_treatment_type_is_a_409_naming_the_first(world, db):
    first = course(world, indication="acne_scars")
    body = refused(
        db,
        world,
        lambda: world.caller.post(
            f"/v1/patients/{world.patient['id']}/courses",
            json={"treatment_type_id": world.microneedling["id"], "indication": "stretch_marks"},
        ),
        409,
        "course_already_active",
    )
    assert body["course_id"] == first["id"]
    # Another patient, or a closed second course, is no clash.
    world.caller.make_course(patient(world)["id"], world.microneedling["id"])
    closed = course(world, status="closed")
    assert closed["status"] == "closed"


def test_without_course_id_every_session_counts_on_the_one_active_course(world, db, clock):
    """With two active courses a booking without course_id counted on no cap (uq_courses_one_active)."""
    world.consulted()
    capped = course(world, max_sessions=1)
    refused(
        db,
        world,
        lambda: world.caller.post(
            f"/v1/patients/{world.patient['id']}/courses",
            json={"treatment_type_id": world.microneedling["id"], "indication": "other_scars"},
        ),
        409,
        "course_already_active",
    )
    assert world.book()["course_id"] == capped["id"]
    refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(30))),
        422,
        "course_complete",
    )
    answer = get(
        world,
        f"/v1/availability?clinic_id={world.clinic['id']}&treatment_type_id="
        f"{world.microneedling['id']}&patient_id={world.patient['id']}"
        f"&start={world.at(30, hour=0)}&end={world.at(31, hour=0)}".replace("+", "%2B"),
    )
    assert answer["data"] == [] and answer["reason"]["code"] == "course_complete"


def test_a_course_is_reopened_only_while_no_other_of_its_type_is_active(world, db):
    first = course(world)
    ok(world.caller.patch(f"/v1/courses/{first['id']}", json={"status": "closed"}))
    second = course(world, indication="stretch_marks")
    body = refused(
        db,
        world,
        lambda: world.caller.patch(f"/v1/courses/{first['id']}", json={"status": "active"}),
        409,
        "course_already_active",
    )
    assert body["course_id"] == second["id"]
    ok(world.caller.patch(f"/v1/courses/{second['id']}", json={"notes": "still the one"}))
    ok(world.caller.patch(f"/v1/courses/{second['id']}", json={"status": "closed"}))
    assert ok(world.caller.patch(f"/v1/courses/{first['id']}", json={"status": "active"}))["status"] == "active"


def test_a_completed_review_does_not_count_on_a_course(world, clock):
    world.consulted()
    c = course(world)
    review = world.book(treatment_type_id=world.review["id"])
    assert review["course_id"] is None
    clock.now = instant(world.at(hour=11))
    ok(act(world, review, "complete"))
    assert get(world, f"/v1/courses/{c['id']}")["sessions_completed"] == 0


def test_cancelling_frees_the_room_and_the_patients_interval(world):
    world.consulted()
    appointment = world.book()
    other = patient(world)
    assert world.caller.post("/v1/appointments", json=world.slot(patient_id=other["id"])).status_code == 409
    assert world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(10))).status_code == 422
    ok(act(world, appointment, "cancel", reason="clinic_request"))
    assert world.book(patient_id=other["id"])["status"] == "booked"
    assert world.book(starts_at=world.at(10))["status"] == "booked"


# =========================================================================== past sessions


def test_a_past_session_must_be_in_the_past(world, db, clock):
    for when in (world.at(hour=8), world.at(1)):  # now, and tomorrow
        body = refused(
            db,
            world,
            lambda when=when: world.caller.post(
                f"/v1/patients/{world.patient['id']}/past-sessions",
                json={"treatment_type_id": world.microneedling["id"], "performed_at": when},
            ),
            422,
            "validation_error",
        )
        assert "performed_at" in body["errors"]
    assert get(world, f"/v1/patients/{world.patient['id']}/past-sessions")["data"] == []


def test_a_past_session_of_an_archived_treatment_type_is_refused_like_a_booking_of_it(world, db):
    db.execute(sa.update(TreatmentType).where(TreatmentType.id == world.consultation["id"]).values(archived_at=MONDAY))
    unknown = {"treatment_type_id": [f"Unknown id '{world.consultation['id']}'."]}
    booked = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(treatment_type_id=world.consultation["id"])),
        422,
        "validation_error",
    )
    recorded = refused(
        db,
        world,
        lambda: world.caller.post(
            f"/v1/patients/{world.patient['id']}/past-sessions",
            json={"treatment_type_id": world.consultation["id"], "performed_at": world.at(-3)},
        ),
        422,
        "validation_error",
    )
    assert booked["errors"] == recorded["errors"] == unknown


def test_past_sessions_are_listed(world, other):
    first = past_session(world, world.at(-100), provider="Another clinic", notes="Light depth")
    second = past_session(world, world.at(-10), treatment_type=world.consultation)
    listed = get(world, f"/v1/patients/{world.patient['id']}/past-sessions")["data"]
    assert {s["id"] for s in listed} == {first["id"], second["id"]}
    shown = next(s for s in listed if s["id"] == first["id"])
    assert (shown["provider"], shown["patient_id"]) == ("Another clinic", world.patient["id"])
    assert instant(shown["performed_at"]) == instant(at(-100))
    assert_problem(other.get(f"/v1/patients/{world.patient['id']}/past-sessions"), 404, "not_found")


def test_a_past_session_ten_days_ago_sets_the_earliest_start(world, db):
    past_session(world, world.at(-10))
    world.consulted()
    body = refused(
        db, world, lambda: world.caller.post("/v1/appointments", json=world.slot()), 422, "interval_too_short"
    )
    assert instant(body["earliest_start"]) == instant(at(18, hour=0))  # the 28th date's midnight
    assert world.book(starts_at=at(18, hour=9))["status"] == "booked"  # its first open hour


def record_past(w: World, performed_at: str, treatment_type=None):
    return w.caller.post(
        f"/v1/patients/{w.patient['id']}/past-sessions",
        json={"treatment_type_id": (treatment_type or w.microneedling)["id"], "performed_at": performed_at},
    )


def test_a_past_session_inside_a_booked_sessions_interval_is_refused_naming_it(world, db):
    world.consulted()
    booked = world.book(starts_at=world.at(10))
    body = refused(db, world, lambda: record_past(world, world.at(-5)), 422, "interval_too_short")
    # The booked session could move to 28 days after the past one at the earliest.
    assert body["conflicts"] == [
        {"appointment_id": booked["id"], "starts_at": booked["starts_at"], "earliest_start": at(23, hour=0)}
    ]
    assert body["earliest_start"] == at(23, hour=0)
    assert "reschedule" in body["detail"]


def test_a_past_session_inside_a_live_holds_interval_is_refused_naming_it(world, db):
    world.consulted()
    held = world.hold(starts_at=world.at(3))
    body = refused(db, world, lambda: record_past(world, world.at(-20)), 422, "interval_too_short")
    assert [c.get("hold_id") for c in body["conflicts"]] == [held["id"]]
    assert body["earliest_start"] == at(8, hour=0)


def test_a_past_session_clear_of_every_booked_interval_is_recorded(world, db):
    world.consulted()
    world.book(starts_at=world.at(10))
    past_session(world, world.at(-18))  # 28 days before the booked session: allowed
    past_session(world, world.at(-5), treatment_type=world.consultation)  # a consultation is no session
    other = patient(world)
    cancelled = world.book(patient_id=other["id"], starts_at=world.at(2))
    ok(act(world, cancelled, "cancel", reason="patient_request"))
    world.book(patient_id=other["id"], starts_at=world.at(1), treatment_type_id=world.review["id"])
    past_session(world, world.at(-5), other["id"])  # a cancelled session and a review do not count


def test_past_sessions_count_for_the_course_cap(world, db):
    world.consulted()
    c = course(world, max_sessions=3)
    past_session(world, world.at(-120), course_id=c["id"])
    past_session(world, world.at(-60), course_id=c["id"])
    shown = get(world, f"/v1/courses/{c['id']}")
    assert (shown["sessions_completed"], shown["status"]) == (2, "active")
    assert world.book()["course_id"] == c["id"]
    body = refused(
        db,
        world,
        lambda: world.caller.post("/v1/appointments", json=world.slot(starts_at=world.at(30))),
        422,
        "course_complete",
    )
    assert (body["max_sessions"], body["sessions"]) == (3, 3)


# =========================================================================== numbing


def test_one_practitioner_starts_a_second_patient_while_the_first_numbs(world, db):
    quick = ok(
        world.caller.post(
            "/v1/treatment-types",
            json={
                "name": "Quick",
                "kind": "microneedling",
                "numbing_minutes": 30,
                "prep_minutes": 5,
                "procedure_minutes": 20,
                "aftercare_minutes": 5,
            },
        ),
        201,
    )
    world.qualify(quick["id"])
    world.consulted()
    first = world.book(treatment_type_id=quick["id"])
    assert (first["procedure_starts_at"], first["ends_at"]) == (
        "2027-01-04T10:30:00+00:00",
        "2027-01-04T10:55:00+00:00",
    )
    second = patient(world)
    room2 = world.rooms[1]["id"]
    for minute in (20, 30):  # needling would meet the first's; cream would go on during it
        body = refused(
            db,
            world,
            lambda minute=minute: world.caller.post(
                "/v1/appointments",
                json=world.slot(
                    treatment_type_id=quick["id"],
                    patient_id=second["id"],
                    room_id=room2,
                    starts_at=world.at(hour=10, minute=minute),
                ),
            ),
            409,
            "slot_unavailable",
        )
        assert conflict_resources(body) == {"practitioner"}
    booked = world.book(
        treatment_type_id=quick["id"], patient_id=second["id"], room_id=room2, starts_at=world.at(hour=10, minute=25)
    )
    assert booked["procedure_starts_at"] == "2027-01-04T10:55:00+00:00"


def test_a_review_fits_inside_another_patients_numbing_time(world, db):
    world.consulted()
    world.book()  # cream 10:00-10:05, numbing until 10:30
    other, room2 = patient(world, consulted=False), world.rooms[1]["id"]
    for minute in (0, 20):
        refused(
            db,
            world,
            lambda minute=minute: world.caller.post(
                "/v1/appointments",
                json=world.slot(
                    treatment_type_id=world.review["id"],
                    patient_id=other["id"],
                    room_id=room2,
                    starts_at=world.at(hour=10, minute=minute),
                ),
            ),
            409,
            "slot_unavailable",
        )
    review = world.book(
        treatment_type_id=world.review["id"],
        patient_id=other["id"],
        room_id=room2,
        starts_at=world.at(hour=10, minute=5),
    )
    assert review["ends_at"] == "2027-01-04T10:20:00+00:00"


@pytest.mark.parametrize("capacity", [1, 2])
def test_a_numbing_area_has_its_own_capacity(admin, clock, db, capacity):
    w = build_world(admin, clock, numbing_area_capacity=capacity)
    w.consulted()
    p2, other = practitioner(w), patient(w)
    w.book()
    target = w.slot(
        patient_id=other["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=10, minute=10)
    )
    if capacity == 1:
        body = refused(db, w, lambda: w.caller.post("/v1/appointments", json=target), 409, "slot_unavailable")
        assert conflict_resources(body) == {"numbing"}
        # Once the first has left the numbing area, a seat is free again.
        w.book(
            patient_id=other["id"],
            practitioner_id=p2["id"],
            room_id=w.rooms[1]["id"],
            starts_at=w.at(hour=10, minute=30),
        )
    else:
        assert ok(w.caller.post("/v1/appointments", json=target), 201)["status"] == "booked"


def test_with_a_numbing_area_the_room_is_free_while_its_next_patient_numbs(admin, clock):
    w = build_world(admin, clock, numbing_area_capacity=2)
    w.consulted()
    p2, other = practitioner(w), patient(w)
    w.book()  # room 1 busy 10:30-11:20
    w.book(patient_id=other["id"], practitioner_id=p2["id"], starts_at=w.at(hour=10, minute=50))


@pytest.mark.parametrize("devices", [1, 2])
def test_devices_are_counted_per_clinic(admin, clock, db, devices):
    w = build_world(admin, clock, device_count=devices)
    w.consulted()
    p2, other = practitioner(w), patient(w)
    w.book()  # needling 10:30-11:00
    target = w.slot(
        patient_id=other["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=10, minute=10)
    )
    if devices == 1:
        body = refused(db, w, lambda: w.caller.post("/v1/appointments", json=target), 409, "slot_unavailable")
        assert conflict_resources(body) == {"device"}
        w.book(
            patient_id=other["id"],
            practitioner_id=p2["id"],
            room_id=w.rooms[1]["id"],
            starts_at=w.at(hour=10, minute=30),
        )  # needling from 11:00
    else:
        assert ok(w.caller.post("/v1/appointments", json=target), 201)["status"] == "booked"


def set_devices(w: World, count):
    return w.caller.patch(f"/v1/clinics/{w.clinic['id']}", json={"device_count": count})


def device_claims(db, w: World) -> list[tuple[str, str | None, str | None]]:
    """(unit, appointment_id, hold_id) of the clinic's device claims."""
    db.expire_all()
    return sorted(
        db.execute(
            sa.select(Claim.resource, Claim.appointment_id, Claim.hold_id).where(
                Claim.resource.like(f"device:{w.clinic['id']}#%")
            )
        ).all()
    )


def needling_side_by_side(w: World):
    """A booked session needling 10:30-11:00 and a second patient's slot needling 10:40-11:10."""
    w.consulted()
    p2, other = practitioner(w), patient(w)
    first = w.book()
    second = w.slot(
        patient_id=other["id"], practitioner_id=p2["id"], room_id=w.rooms[1]["id"], starts_at=w.at(hour=10, minute=10)
    )
    return first, second


def test_switching_devices_on_gives_every_live_booking_its_device_claim(world, db):
    first, second = needling_side_by_side(world)
    assert ok(set_devices(world, 1))["device_count"] == 1
    assert device_claims(db, world) == [(f"device:{world.clinic['id']}#1", first["id"], None)]
    body = refused(db, world, lambda: world.caller.post("/v1/appointments", json=second), 409, "slot_unavailable")
    assert conflict_resources(body) == {"device"}
    assert {c.get("appointment_id") for c in body["conflicts"]} == {first["id"]}


def test_switching_devices_on_below_what_bookings_use_is_a_409_naming_them(world, db):
    first, second = needling_side_by_side(world)
    held = world.hold(**{k: v for k, v in second.items() if k in RESCHEDULABLE or k == "patient_id"})
    before = written(db, world)
    body = assert_problem(set_devices(world, 1), 409, "device_count_too_low")
    assert written(db, world) == before and get(world, f"/v1/clinics/{world.clinic['id']}")["device_count"] is None
    assert body["devices_needed"] == 2
    assert [(c.get("appointment_id"), c.get("hold_id")) for c in body["conflicts"]] == [
        (first["id"], None),
        (None, held["id"]),
    ]
    assert body["conflicts"][0]["starts_at"] == first["procedure_starts_at"]
    assert ok(set_devices(world, 2))["device_count"] == 2
    assert [(a, h) for _, a, h in device_claims(db, world)] == [(first["id"], None), (None, held["id"])]
    assert_problem(set_devices(world, 0), 409, "device_count_too_low")


def test_lowering_device_count_below_what_bookings_use_is_a_409(admin, clock, db):
    w = build_world(admin, clock, device_count=2)
    _first, second = needling_side_by_side(w)
    ok(w.caller.post("/v1/appointments", json=second), 201)
    body = assert_problem(set_devices(w, 1), 409, "device_count_too_low")
    assert (len(body["conflicts"]), body["devices_needed"]) == (2, 2)
    assert get(w, f"/v1/clinics/{w.clinic['id']}")["device_count"] == 2


def test_a_cancelled_or_past_booking_does_not_hold_a_device_when_devices_are_counted(world, db, clock):
    first, second = needling_side_by_side(world)
    ok(act(world, first, "cancel", reason="patient_request"))
    ok(set_devices(world, 1))
    assert device_claims(db, world) == []
    assert ok(world.caller.post("/v1/appointments", json=second), 201)["status"] == "booked"


def test_switching_devices_off_drops_their_claims(admin, clock, db):
    w = build_world(admin, clock, device_count=1)
    _first, second = needling_side_by_side(w)
    assert len(device_claims(db, w)) == 1
    assert ok(set_devices(w, None))["device_count"] is None
    assert device_claims(db, w) == []
    assert ok(w.caller.post("/v1/appointments", json=second), 201)["status"] == "booked"


# =========================================================================== time zones

DST_CHANGES = [
    # zone, Monday before, its local offset, Monday after, its local offset
    ("Europe/London", "2027-03-22", "+00:00", "2027-03-29", "+01:00"),
    ("America/New_York", "2027-03-08", "-05:00", "2027-03-15", "-04:00"),
    ("Europe/London", "2027-10-25", "+01:00", "2027-11-01", "+00:00"),
    ("America/New_York", "2027-11-01", "-04:00", "2027-11-08", "-05:00"),
]


@pytest.mark.parametrize("zone, before, before_offset, after, after_offset", DST_CHANGES)
def test_weekly_hours_stay_local_across_a_dst_change(
    admin, clock, db, zone, before, before_offset, after, after_offset
):
    w = build_world(admin, clock, timezone_name=zone)
    clock.now = datetime.fromisoformat(f"{before}T00:00:00+00:00") - timedelta(days=3)
    consulted_at = (clock.now - timedelta(days=1)).isoformat()
    for day, offset in ((before, before_offset), (after, after_offset)):
        first, last = patient(w, consulted=False), patient(w, consulted=False)
        for p in (first, last):
            past_session(w, consulted_at, p["id"], w.consultation)
        for refused_at in (f"{day}T08:30:00{offset}", f"{day}T16:30:00{offset}"):  # the last ends 17:40
            refused(
                db,
                w,
                lambda first=first, at=refused_at: w.caller.post(
                    "/v1/appointments", json=w.slot(patient_id=first["id"], starts_at=at)
                ),
                422,
                "outside_working_hours",
            )
        # 09:00 and 15:50 local, written in UTC: the answer is in the clinic's local time.
        nine = instant(f"{day}T09:00:00{offset}").astimezone(UTC).isoformat()
        booked = w.book(patient_id=first["id"], starts_at=nine)
        assert (booked["starts_at"], booked["ends_at"]) == (f"{day}T09:00:00{offset}", f"{day}T10:10:00{offset}")
        ten_to_four = instant(f"{day}T15:50:00{offset}").astimezone(UTC).isoformat()
        booked = w.book(patient_id=last["id"], starts_at=ten_to_four, room_id=w.rooms[1]["id"])
        assert booked["ends_at"] == f"{day}T17:00:00{offset}"
    # The two 09:00s are different UTC hours: the hours followed the wall clock.
    assert instant(f"{before}T09:00:00{before_offset}").time() == instant(f"{after}T09:00:00{after_offset}").time()
    assert (instant(f"{after}T09:00:00{after_offset}") - instant(f"{before}T09:00:00{before_offset}")) != timedelta(
        days=7
    )


def test_a_practitioner_works_two_clinics_in_two_zones_on_one_day(world, db):
    ny = clinic(world, timezone_name="America/New_York")
    ok(
        world.caller.patch(
            f"/v1/practitioners/{world.practitioner['id']}", json={"clinic_ids": [world.clinic["id"], ny.clinic["id"]]}
        )
    )
    set_hours(
        world,
        world.practitioner,
        [
            {"clinic_id": world.clinic["id"], "weekday": 0, "start": "09:00", "end": "12:00"},
            {"clinic_id": ny.clinic["id"], "weekday": 0, "start": "14:00", "end": "17:00"},
        ],
    )
    world.consulted()
    in_london = world.book()
    assert in_london["starts_at"] == "2027-01-04T10:00:00+00:00"
    in_new_york = world.book(
        patient_id=patient(world)["id"],
        clinic_id=ny.clinic["id"],
        room_id=ny.room["id"],
        starts_at="2027-01-04T14:00:00-05:00",
    )
    assert in_new_york["starts_at"] == "2027-01-04T14:00:00-05:00"
    assert in_new_york["practitioner_id"] == in_london["practitioner_id"]
    # 11:00 London is 06:00 in New York: outside the New York hours.
    third = patient(world)
    refused(
        db,
        world,
        lambda: world.caller.post(
            "/v1/appointments",
            json=world.slot(
                patient_id=third["id"], clinic_id=ny.clinic["id"], room_id=ny.room["id"], starts_at=world.at(hour=11)
            ),
        ),
        422,
        "outside_working_hours",
    )


def test_a_practitioner_cannot_be_booked_in_two_clinics_at_the_same_instant(world, db):
    """Weekly hours at two clinics never overlap, so build the clash by moving the hours:
    book London at 10:00 UTC, then move the practitioner's Monday to New York 05:00-08:00
    (10:00-13:00 UTC); the London appointment stays, and its claim blocks New York."""
    ny = clinic(
        world,
        timezone_name="America/New_York",
        opening_hours=[{"weekday": d, "start": "05:00", "end": "20:00"} for d in WEEK],
    )
    ok(
        world.caller.patch(
            f"/v1/practitioners/{world.practitioner['id']}", json={"clinic_ids": [world.clinic["id"], ny.clinic["id"]]}
        )
    )
    world.consulted()
    in_london = world.book()
    set_hours(
        world, world.practitioner, [{"clinic_id": ny.clinic["id"], "weekday": 0, "start": "05:00", "end": "08:00"}]
    )
    other = patient(world)
    same_instant = world.slot(
        patient_id=other["id"], clinic_id=ny.clinic["id"], room_id=ny.room["id"], starts_at="2027-01-04T05:00:00-05:00"
    )
    body = refused(db, world, lambda: world.caller.post("/v1/appointments", json=same_instant), 409, "slot_unavailable")
    assert conflict_resources(body) == {"practitioner"}
    assert {c["appointment_id"] for c in body["conflicts"]} == {in_london["id"]}
    refused(db, world, lambda: world.caller.post("/v1/holds", json=same_instant), 409, "slot_unavailable")
    # Once the London appointment is cancelled, the same request books.
    ok(act(world, in_london, "cancel", reason="practitioner_unavailable"))
    booked = ok(world.caller.post("/v1/appointments", json=same_instant), 201)
    assert booked["starts_at"] == "2027-01-04T05:00:00-05:00"


def test_leaving_out_course_id_does_not_book_past_a_completed_course(world, db):
    world.consulted()
    capped = course(world, max_sessions=1)
    first = world.book(course_id=capped["id"])
    world.clock.advance(hours=3)
    ok(world.caller.post(f"/v1/appointments/{first['id']}/complete"))
    assert get(world, f"/v1/courses/{capped['id']}")["status"] == "complete"
    body = assert_problem(
        world.caller.post("/v1/appointments", json=world.slot(starts_at=at(day=35))), 422, "course_complete"
    )
    assert "new course" in body["detail"]


def test_instants_in_a_refusal_carry_the_clinic_offset(admin, clock):
    ny = build_world(admin, clock, timezone_name="America/New_York")
    ny.consulted()
    ny.book(starts_at=at(hour=15))  # 10:00 in New York (EST, -05:00)
    body = assert_problem(
        admin.post("/v1/appointments", json=ny.slot(starts_at=at(day=7, hour=15))), 422, "interval_too_short"
    )
    assert body["earliest_start"] == "2027-02-01T00:00:00-05:00"  # the 28th local date's midnight
    assert body["conflicting_starts"] == ["2027-01-04T10:00:00-05:00"]
