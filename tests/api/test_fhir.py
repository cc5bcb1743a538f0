"""The FHIR R4 read views under /fhir/R4, compared with what /v1 says about the same data.

Every FHIR resource a test receives (reads, Bundles and each of their entries, the
CapabilityStatement, OperationOutcomes) is validated with the fhir.resources package. Its
R4B models are used: for the resources served here R4B is R4 (4.0.1) unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class

from booking.services import appointments as services
from booking.services.appointments import SlotRequest

from ..booking_world import build_world

FHIR_JSON = "application/fhir+json"


def validated(resource: dict) -> dict:
    """The resource, once fhir.resources accepts it (and, in a Bundle, every entry's resource)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []):
        validated(entry["resource"])
        assert entry["fullUrl"].endswith(f"/fhir/R4/{entry['resource']['resourceType']}/{entry['resource']['id']}")
    return resource


def fhir_get(caller, path, **params) -> dict:
    response = caller.get(f"/fhir/R4/{path}", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.mimetype == FHIR_JSON
    return validated(response.get_json())


def outcome(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == FHIR_JSON
    body = validated(response.get_json())
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == code, body
    return body


def resources(bundle: dict) -> list[dict]:
    assert bundle["type"] == "searchset"
    return [entry["resource"] for entry in bundle["entry"]]


def every_page(caller, path, **params) -> list[dict]:
    """Follow the `next` links, checking each page and that `total` counts them all."""
    first = bundle = fhir_get(caller, path, **params)
    found = resources(bundle)
    while following := [link["url"] for link in bundle["link"] if link["relation"] == "next"]:
        url = urlsplit(following[0])
        bundle = fhir_get(
            caller,
            url.path.removeprefix("/fhir/R4/"),
            **{k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()},
        )
        found += resources(bundle)
    assert first["total"] == len(found) == len({(r["resourceType"], r["id"]) for r in found})
    return found


def fid(api_id: str) -> str:
    return api_id.replace("_", "-", 1)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def schedule_id(world) -> str:
    return f"{fid(world.practitioner['id'])}.{fid(world.clinic['id'])}"


def new_consulted_patient(world, name="Sam Jones") -> dict:
    patient = world.new_patient(name=name, email=f"{name.split()[0].lower()}@example.com", phone="+442079460123")
    world.consulted(patient["id"])
    return patient


def follow_up_hold(app, world, starts_at: str):
    """A hold the scheduler would place for a follow-up, placed with the domain service."""
    with app.extensions["db_write_sessions"]() as session:
        hold = services.place_hold(
            session,
            world.caller.organization_id,
            SlotRequest(
                clinic_id=world.clinic["id"],
                practitioner_id=world.practitioner["id"],
                room_id=world.rooms[1]["id"],
                treatment_type_id=world.review["id"],
                patient_id=world.patient["id"],
                starts_at=datetime.fromisoformat(starts_at),
            ),
            ttl=timedelta(days=3),
            source="follow_up",
        )
        session.commit()
        return hold.id


# --- CapabilityStatement, auth and errors -------------------------------------------------------------


def test_metadata_lists_the_resources_and_their_search_parameters(world):
    statement = fhir_get(world.caller.with_scopes("read"), "metadata")
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    served = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(served) == {"Practitioner", "Location", "Schedule", "Slot", "Appointment"}
    assert {p["name"] for p in served["Appointment"]["searchParam"]} >= {"date", "practitioner", "status", "_count"}
    assert {p["name"] for p in served["Slot"]["searchParam"]} >= {"schedule", "start"}
    assert {"read", "search-type"} == {i["code"] for i in served["Practitioner"]["interaction"]}


@pytest.mark.parametrize("path", ["metadata", "Practitioner", "Appointment/appt-x", "Slot"])
def test_a_missing_or_unknown_key_is_a_401_outcome(client, path):
    for headers in ({}, {"Authorization": "Bearer nbk_wrong"}):
        response = client.get(f"/fhir/R4/{path}", headers=headers)
        outcome(response, 401, "login")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_key_without_the_read_scope_is_a_403_outcome(world):
    outcome(world.caller.with_scopes("book").get("/fhir/R4/Practitioner"), 403, "forbidden")


def test_a_read_scope_key_reads_everything(world):
    reader = world.caller.with_scopes("read")
    world.consulted()
    appointment = world.book()
    for path in (
        f"Practitioner/{fid(world.practitioner['id'])}",
        f"Location/{fid(world.clinic['id'])}",
        f"Schedule/{schedule_id(world)}",
        f"Appointment/{fid(appointment['id'])}",
    ):
        fhir_get(reader, path)
    for path in ("Practitioner", "Location", "Schedule", "Appointment"):
        assert fhir_get(reader, path)["total"] > 0, path
    assert fhir_get(reader, "Slot", schedule=schedule_id(world))["total"] > 0


def test_unknown_ids_are_404_outcomes(world):
    for path in (
        "Practitioner/prac-nope",
        "Location/cln-nope",
        "Schedule/prac-a.cln-b",
        "Schedule/nodot",
        "Appointment/appt-nope",
        "Appointment/hold-nope",
    ):
        outcome(world.caller.get(f"/fhir/R4/{path}"), 404, "not-found")


@pytest.mark.parametrize(
    "path, params, parameter",
    [
        ("Appointment", {"date": "ge2027-13-01"}, "date"),
        ("Appointment", {"date": "sa2027-01-04"}, "date"),
        ("Appointment", {"date": "ge2027-01-04T10:00"}, "date"),  # an instant needs an offset
        ("Appointment", {"status": "confirmed"}, "status"),
        ("Appointment", {"practitioner": "Location/cln-x"}, "practitioner"),
        ("Appointment", {"emial": "x"}, "emial"),
        ("Appointment", {"_count": "-1"}, "_count"),
        ("Appointment", {"_cursor": "%%%"}, "_cursor"),
        ("Slot", {"start": ["ge2027-01-01", "lt2027-03-01"]}, "start"),  # more than 31 days
        ("Schedule", {"actor": "Patient/pat-x"}, "actor"),
    ],
)
def test_a_bad_search_parameter_is_a_400_outcome(world, path, params, parameter):
    body = outcome(world.caller.get(f"/fhir/R4/{path}", query_string=params), 400, "invalid")
    assert [parameter] in [issue.get("expression") for issue in body["issue"]], body


@pytest.mark.parametrize(
    "path, parameter, value",
    [
        ("Appointment", "date", "ge0001-01-01"),
        ("Appointment", "date", "9999"),
        ("Appointment", "date", "lt9999-12-31T23:59:59.999999+00:00"),
        ("Appointment", "date", "eq9999-12-31T23:00:00-05:00"),
        ("Appointment", "date", "1899-12"),
        ("Slot", "start", "ge9999-12-31"),
        ("Slot", "start", "lt0001-01-01T00:00:00+05:00"),
        ("Slot", "start", "ge2201-01-01T00:00:00Z"),
    ],
)
def test_a_date_outside_1900_to_2200_is_a_400_outcome_naming_the_parameter(world, path, parameter, value):
    body = outcome(world.caller.get(f"/fhir/R4/{path}", query_string={parameter: value}), 400, "invalid")
    issue = next(issue for issue in body["issue"] if issue.get("expression") == [parameter])
    assert "1900" in issue["diagnostics"] and "2200" in issue["diagnostics"], body


def test_dates_at_the_ends_of_the_range_are_searched(world):
    assert fhir_get(world.caller, "Appointment", date=["ge1900-01-01", "le2200-12-31T23:59:59-05:00"])
    assert fhir_get(world.caller, "Slot", start="ge2200-12-25", schedule=schedule_id(world))


# --- Practitioner, Location, Schedule -----------------------------------------------------------------


def test_practitioner_read_and_search(world):
    practitioner = fhir_get(world.caller, f"Practitioner/{fid(world.practitioner['id'])}")
    assert practitioner["name"] == [{"text": world.practitioner["name"]}] and practitioner["active"] is True
    # The API's own id spelling is accepted too.
    assert fhir_get(world.caller, f"Practitioner/{world.practitioner['id']}")["id"] == practitioner["id"]
    other = world.caller.make_practitioner([world.clinic["id"]], name="Anna Lee")
    assert [p["id"] for p in resources(fhir_get(world.caller, "Practitioner", name="lee"))] == [fid(other["id"])]
    assert [p["id"] for p in resources(fhir_get(world.caller, "Practitioner", name="ann"))] == [fid(other["id"])]
    assert resources(fhir_get(world.caller, "Practitioner", name="nna")) == []
    assert len(resources(fhir_get(world.caller, "Practitioner"))) == 2


def test_location_is_the_clinic_with_its_zone(admin, clock):
    world = build_world(admin, clock, timezone_name="America/New_York")
    location = fhir_get(admin, f"Location/{fid(world.clinic['id'])}")
    assert location["name"] == world.clinic["name"]
    assert {"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": "America/New_York"} in location[
        "extension"
    ]
    assert "America/New_York" in location["description"]
    assert location["hoursOfOperation"] == [
        {"daysOfWeek": ["mon", "tue", "wed", "thu", "fri", "sat"], "openingTime": "08:00:00", "closingTime": "20:00:00"}
    ]
    assert location["meta"]["lastUpdated"].endswith("-05:00")


def test_schedules_pair_each_practitioner_with_each_clinic(world):
    second = world.caller.make_clinic(name="Leeds")
    world.caller.patch(
        f"/v1/practitioners/{world.practitioner['id']}", json={"clinic_ids": [world.clinic["id"], second["id"]]}
    )
    found = every_page(world.caller, "Schedule", actor=f"Practitioner/{fid(world.practitioner['id'])}", _count=1)
    assert sorted(s["id"] for s in found) == sorted(
        [schedule_id(world), f"{fid(world.practitioner['id'])}.{fid(second['id'])}"]
    )
    [at_leeds] = resources(fhir_get(world.caller, "Schedule", actor=f"Location/{fid(second['id'])}"))
    assert [a["reference"] for a in at_leeds["actor"]] == [
        f"Practitioner/{fid(world.practitioner['id'])}",
        f"Location/{fid(second['id'])}",
    ]
    schedule = fhir_get(world.caller, f"Schedule/{schedule_id(world)}")
    assert {c["code"] for s in schedule["serviceType"] for c in s["coding"]} == {
        fid(world.consultation["id"]),
        fid(world.microneedling["id"]),
        fid(world.review["id"]),
    }


# --- Appointment ----------------------------------------------------------------------------------------


def test_appointment_matches_the_booking_through_its_lifecycle(world):
    world.consulted()
    booked = world.book()
    read = fhir_get(world.caller, f"Appointment/{fid(booked['id'])}")
    assert (read["status"], read["id"]) == ("booked", fid(booked["id"]))
    assert (read["start"], read["end"]) == (booked["starts_at"], booked["ends_at"])
    assert instant(read["extension"][0]["valueInstant"]) == instant(booked["procedure_starts_at"])
    actors = [p["actor"] for p in read["participant"]]
    assert [a.get("reference") for a in actors] == [
        f"Practitioner/{fid(world.practitioner['id'])}",
        f"Location/{fid(world.clinic['id'])}",
        None,
    ]
    assert actors[2]["display"] == world.patient["name"] and "pat@example.com" not in str(read)

    def after(action, fhir_status):
        response = world.caller.post(f"/v1/appointments/{booked['id']}/{action}", json=None)
        assert response.status_code == 200, response.get_json()
        assert fhir_get(world.caller, f"Appointment/{fid(booked['id'])}")["status"] == fhir_status

    after("check-in", "arrived")
    world.clock.now = instant(booked["ends_at"])
    after("complete", "fulfilled")


@pytest.mark.parametrize(
    "action, body, fhir_status", [("cancel", {"reason": "patient_request"}, "cancelled"), ("no-show", None, "noshow")]
)
def test_cancelled_and_no_show_appointments(world, action, body, fhir_status):
    world.consulted()
    booked = world.book()
    world.clock.now = instant(booked["starts_at"]) + timedelta(minutes=1)
    assert world.caller.post(f"/v1/appointments/{booked['id']}/{action}", json=body).status_code == 200
    read = fhir_get(world.caller, f"Appointment/{fid(booked['id'])}")
    assert read["status"] == fhir_status
    if action == "cancel":
        assert read["cancelationReason"]["coding"][0]["code"] == "patient_request"


def test_holds_are_pending_and_follow_up_holds_proposed(app, world):
    world.consulted()
    hold = world.hold()
    proposed_id = follow_up_hold(app, world, world.at(1, 14))
    pending = fhir_get(world.caller, f"Appointment/{fid(hold['id'])}")
    assert pending["id"].startswith("hold-") and pending["status"] == "pending"
    assert (pending["start"], pending["end"]) == (hold["starts_at"], hold["ends_at"])
    assert fhir_get(world.caller, f"Appointment/{fid(proposed_id)}")["status"] == "proposed"
    assert [a["id"] for a in resources(fhir_get(world.caller, "Appointment", status="proposed"))] == [fid(proposed_id)]
    # A hold that lapsed is gone from the views.
    world.clock.now = instant(hold["expires_at"])
    outcome(world.caller.get(f"/fhir/R4/Appointment/{fid(hold['id'])}"), 404, "not-found")
    assert {a["status"] for a in resources(fhir_get(world.caller, "Appointment"))} == {"proposed"}


def test_appointment_search_by_date_practitioner_and_status(world):
    patients = [world.patient] + [new_consulted_patient(world, f"P{i} Smith") for i in range(3)]
    world.consulted()
    booked = [world.book(patient_id=p["id"], starts_at=world.at(day, 11)) for day, p in enumerate(patients)]
    world.clock.now = instant(booked[0]["starts_at"]) + timedelta(minutes=1)
    world.caller.post(f"/v1/appointments/{booked[0]['id']}/cancel", json={"reason": "patient_request"})
    other = world.caller.make_practitioner([world.clinic["id"]])

    def ids(**params):
        return [a["id"] for a in every_page(world.caller, "Appointment", **params)]

    assert ids() == [fid(b["id"]) for b in booked]
    assert ids(date="2027-01-05") == [fid(booked[1]["id"])]
    assert ids(date=["ge2027-01-05", "lt2027-01-07"]) == [fid(b["id"]) for b in booked[1:3]]
    assert ids(date=["gt2027-01-05", "le2027-01-07"]) == [fid(b["id"]) for b in booked[2:4]]
    assert ids(date=f"ge{booked[3]['starts_at']}") == [fid(booked[3]["id"])]
    assert ids(date=f"gt{booked[3]['starts_at']}") == []
    assert ids(date=f"lt{booked[3]['starts_at']}") == [fid(b["id"]) for b in booked[:3]]
    assert ids(date="le" + booked[3]["starts_at"].replace("+00:00", "Z")) == [fid(b["id"]) for b in booked]
    assert ids(status="cancelled") == [fid(booked[0]["id"])]
    assert ids(status="booked,cancelled", _count=1) == [fid(b["id"]) for b in booked]
    assert ids(practitioner=f"Practitioner/{fid(world.practitioner['id'])}", status="booked") == [
        fid(b["id"]) for b in booked[1:]
    ]
    assert ids(practitioner=world.practitioner["id"], _count=2) == [fid(b["id"]) for b in booked]
    assert ids(practitioner=fid(other["id"])) == []
    assert ids(location=fid(world.clinic["id"]), _id=fid(booked[2]["id"])) == [fid(booked[2]["id"])]


def test_instants_carry_the_clinics_offset(admin, clock):
    world = build_world(admin, clock, timezone_name="America/New_York")
    world.consulted()
    booked = world.book(starts_at=world.at(0, 15))  # 10:00 in New York
    read = fhir_get(world.caller, f"Appointment/{fid(booked['id'])}")
    assert read["start"] == "2027-01-04T10:00:00-05:00" == booked["starts_at"]


# --- Slot -------------------------------------------------------------------------------------------------


def availability(world, day: int, treatment_type: dict) -> list[str]:
    response = world.caller.get(
        "/v1/availability",
        query_string={
            "treatment_type_id": treatment_type["id"],
            "practitioner_id": world.practitioner["id"],
            "clinic_id": world.clinic["id"],
            "start": world.at(day, 0),
            "end": world.at(day + 1, 0),
            "limit": 500,
        },
    )
    assert response.status_code == 200, response.get_json()
    return [s["starts_at"] for s in response.get_json()["data"]]


def slots(world, day: int, **params) -> list[dict]:
    return every_page(
        world.caller,
        "Slot",
        schedule=f"Schedule/{schedule_id(world)}",
        start=[f"ge2027-01-{4 + day:02d}", f"lt2027-01-{5 + day:02d}"],
        **params,
    )


def test_free_slots_are_the_starts_availability_gives(world):
    world.consulted()
    world.book(starts_at=world.at(1, 12))
    for day in (0, 1):
        for treatment_type in (world.microneedling, world.review):
            free = slots(world, day, status="free", **{"service-type": fid(treatment_type["id"])}, _count=40)
            assert [s["start"] for s in free] == availability(world, day, treatment_type) != []
            assert {s["schedule"]["reference"] for s in free} == {f"Schedule/{schedule_id(world)}"}
    # Without service-type: every treatment type the practitioner does.
    every = slots(world, 0, status="free", _count=200)
    assert len(every) == sum(
        len(availability(world, 0, t)) for t in (world.consultation, world.microneedling, world.review)
    )


def test_busy_slots_cover_appointments_and_holds(app, world):
    world.consulted()
    booked = world.book(starts_at=world.at(0, 12))
    held = world.hold(
        patient_id=new_consulted_patient(world)["id"], starts_at=world.at(0, 14), room_id=world.rooms[1]["id"]
    )
    busy = [s for s in slots(world, 0) if s["status"] != "free"]
    assert [(s["id"], s["status"], s["start"], s["end"]) for s in busy] == [
        (fid(booked["id"]), "busy", booked["starts_at"], booked["ends_at"]),
        (fid(held["id"]), "busy-tentative", held["starts_at"], held["ends_at"]),
    ]
    assert [s["id"] for s in slots(world, 0, status="busy")] == [fid(booked["id"])]
    # The practitioner is busy from a booking's needling to its end: no free slot starts then.
    free = slots(world, 0, status="free", **{"service-type": fid(world.microneedling["id"])})
    for slot in busy:
        procedure, end = instant(slot["extension"][0]["valueInstant"]), instant(slot["end"])
        assert free and not [f for f in free if procedure <= instant(f["start"]) < end]
    world.caller.post(f"/v1/appointments/{booked['id']}/cancel", json={"reason": "patient_request"})
    assert [s["id"] for s in slots(world, 0, status="busy")] == []


def test_slot_search_defaults_to_the_next_seven_days(world):
    starts = {
        instant(s["start"]).date()
        for s in every_page(world.caller, "Slot", schedule=schedule_id(world), status="free", _count=200)
    }
    # Monday 4 January, 08:00: from today for 7 days; Sundays off.
    assert sorted(starts) == [datetime(2027, 1, d).date() for d in (4, 5, 6, 7, 8, 9)]


# --- tenancy -----------------------------------------------------------------------------------------------


def test_another_organizations_key_sees_nothing(app, world, other):
    world.consulted()
    booked = world.book()
    hold = world.hold(patient_id=new_consulted_patient(world)["id"], starts_at=world.at(1, 12))
    for path in (
        f"Practitioner/{fid(world.practitioner['id'])}",
        f"Location/{fid(world.clinic['id'])}",
        f"Schedule/{schedule_id(world)}",
        f"Appointment/{fid(booked['id'])}",
        f"Appointment/{fid(hold['id'])}",
    ):
        outcome(other.get(f"/fhir/R4/{path}"), 404, "not-found")
    for path, params in [
        ("Practitioner", {}),
        ("Location", {}),
        ("Schedule", {}),
        ("Appointment", {}),
        ("Slot", {"schedule": schedule_id(world)}),
        ("Appointment", {"practitioner": fid(world.practitioner["id"])}),
    ]:
        bundle = fhir_get(other, path, **params)
        assert (bundle["total"], bundle["entry"]) == (0, []), path


def test_fhir_requests_count_against_the_rate_limit(backend, connection):
    from ..helpers import make_organization
    from .test_limits import build

    app = build(backend, connection, RATE_LIMIT="3 per minute")
    caller = make_organization(app, app.test_client(), "Limited")
    for _ in range(3):
        fhir_get(caller, "Practitioner")
    refused = caller.get("/fhir/R4/Practitioner")
    # The limiter answers before any view runs, so this one stays problem+json (api/fhir.py).
    assert refused.status_code == 429 and refused.headers["Retry-After"]


def test_free_slots_need_a_named_schedule_so_one_search_cannot_compute_the_whole_chain(world, monkeypatch):
    from api import fhir as fhir_view
    from booking.services import availability_search

    computed = []
    real = availability_search.search
    monkeypatch.setattr(availability_search, "search", lambda *a, **k: computed.append(1) or real(*a, **k))
    for params in ({}, {"status": "free"}, {"status": "free,busy"}):
        body = outcome(world.caller.get("/fhir/R4/Slot", query_string=params), 400, "invalid")
        assert "schedule" in body["issue"][0]["diagnostics"]
    many = ",".join(f"Schedule/{schedule_id(world)}" for _ in range(fhir_view.MAX_FREE_SCHEDULES + 1))
    outcome(world.caller.get("/fhir/R4/Slot", query_string={"schedule": many}), 400, "invalid")
    assert computed == []
    # Busy slots come from the database, not the engine: every schedule at once is fine.
    world.consulted()
    booked = world.book(starts_at=world.at(0, 12))
    busy = every_page(world.caller, "Slot", status="busy", start=["ge2027-01-04", "lt2027-01-05"])
    assert [s["id"] for s in busy] == [fid(booked["id"])]
