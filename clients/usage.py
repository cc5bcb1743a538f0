"""What a Python integrator writes against the client openapi-python-client generates from
openapi/openapi.json (clients/check type-checks it with mypy --strict; it is never run).

Written as an integrator reads the document: fields an answer always has are used without a
check for UNSET, closed vocabularies are enums, and each problem's extension fields (a 409's
`conflicts`, a 422 `interval_too_short`'s `earliest_start`) are attributes of its own class.
"""

from __future__ import annotations

import datetime
import uuid

from needlebook_client import AuthenticatedClient
from needlebook_client.api.appointments import create_appointment
from needlebook_client.api.availability import search_availability
from needlebook_client.api.clinics import list_clinics
from needlebook_client.api.follow_ups import get_follow_up
from needlebook_client.api.holds import create_hold
from needlebook_client.api.treatment_types import list_treatment_types
from needlebook_client.models import (
    Appointment,
    AppointmentCreate,
    AppointmentStatus,
    Availability,
    Clinic,
    ClinicPage,
    FollowUp,
    FollowUpStatus,
    Hold,
    HoldInput,
    IntervalTooShortProblem,
    SlotOutput,
    SlotUnavailableProblem,
    TreatmentType,
    TreatmentTypeKind,
    TreatmentTypePage,
)
from needlebook_client.types import UNSET

client = AuthenticatedClient(base_url="https://clinic.example", token="nbk_...")


def all_clinics() -> list[Clinic]:
    clinics: list[Clinic] = []
    cursor: str | None = None
    while True:
        page = list_clinics.sync(client=client, limit=50, cursor=cursor if cursor is not None else UNSET)
        if not isinstance(page, ClinicPage):
            raise RuntimeError(f"listClinics: {page}")
        clinics.extend(page.data)
        if page.next_cursor is None:
            return clinics
        cursor = page.next_cursor


def microneedling_type() -> TreatmentType | None:
    page = list_treatment_types.sync(client=client)
    if not isinstance(page, TreatmentTypePage):
        raise RuntimeError(f"listTreatmentTypes: {page}")
    return next((t for t in page.data if t.kind is TreatmentTypeKind.MICRONEEDLING), None)


def first_slot(clinic: Clinic, treatment_type: TreatmentType, patient_id: str) -> SlotOutput | str:
    start = datetime.datetime(2026, 3, 2, 9, tzinfo=datetime.UTC)
    found = search_availability.sync(
        client=client,
        clinic_id=clinic.id,
        treatment_type_id=treatment_type.id,
        patient_id=patient_id,
        start=start,
        end=start + datetime.timedelta(days=7),
        limit=5,
    )
    if not isinstance(found, Availability):
        raise RuntimeError(f"searchAvailability: {found}")
    if found.data:
        slot = found.data[0]
        arrive: datetime.datetime = slot.starts_at  # in the clinic's offset
        print(f"{clinic.name} ({clinic.timezone}): arrive {arrive:%H:%M}, needling {slot.procedure_starts_at:%H:%M}")
        return slot
    # No slot: the patient's rules ruled the window out; say which, and from when they may book.
    if found.reason is None:
        return "nothing free"
    return f"{found.reason.code}: from {found.reason.earliest_start}"


def hold_and_book(slot: SlotOutput, patient_id: str) -> Appointment | None:
    held = create_hold.sync_detailed(
        client=client,
        body=HoldInput(
            clinic_id=slot.clinic_id,
            practitioner_id=slot.practitioner_id,
            room_id=slot.room_id,
            treatment_type_id=slot.treatment_type_id,
            starts_at=slot.starts_at,
            patient_id=patient_id,
        ),
        idempotency_key=str(uuid.uuid4()),
    )
    answer = held.parsed
    if isinstance(answer, SlotUnavailableProblem):  # 409: someone else took it; show what collided
        for conflict in answer.conflicts:
            busy = f"{conflict.starts_at:%H:%M}-{conflict.ends_at:%H:%M}"
            print(f"{conflict.resource} {conflict.resource_id} busy {busy}")
        return None
    if isinstance(answer, IntervalTooShortProblem):  # 422 interval_too_short
        earliest: datetime.datetime = answer.earliest_start
        print(f"Too soon after the last session: book from {earliest:%d %b}")
        return None
    if not isinstance(answer, Hold):
        raise RuntimeError(f"createHold: {held.status_code} {answer}")
    expires: datetime.datetime = answer.expires_at
    print(f"Held {answer.id} until {expires:%H:%M} ({answer.source})")
    return book(answer.id)


def book(hold_id: str) -> Appointment | None:
    booked = create_appointment.sync(client=client, body=AppointmentCreate(hold_id=hold_id))
    if isinstance(booked, Appointment):
        status: AppointmentStatus = booked.status
        print(f"Booked {booked.id} ({status.value}) at {booked.starts_at:%d %b %H:%M}")
        return booked
    if isinstance(booked, SlotUnavailableProblem):
        print([conflict.appointment_id or conflict.hold_id for conflict in booked.conflicts])
    return None


def confirm_follow_up(follow_up_id: str) -> Appointment | None:
    follow_up = get_follow_up.sync(client=client, follow_up_id=follow_up_id)
    if not isinstance(follow_up, FollowUp):
        return None
    if follow_up.status is not FollowUpStatus.PROPOSED or follow_up.hold is None:
        detail = follow_up.reason.detail if follow_up.reason is not None else ""
        print(f"Nothing held ({follow_up.status.value}): {detail}")
        return None
    hold: Hold = follow_up.hold
    print(f"Proposed {hold.starts_at:%d %b %H:%M}, held until {hold.expires_at:%d %b %H:%M}")
    return book(hold.id)
