"""The slot fields that availability results, holds and appointments share."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from booking.services.appointments import SlotRequest

from .base import ClinicInstant, Id, Instant, Schema


class SlotInputSchema(Schema):
    clinic_id = Id(required=True)
    practitioner_id = Id(required=True)
    room_id = Id(required=True)
    treatment_type_id = Id(required=True)
    starts_at = Instant(required=True, metadata={"description": "Patient arrives; numbing cream goes on"})
    procedure_starts_at = Instant(
        metadata={"description": "Needling starts; default and earliest: starts_at + numbing_minutes"}
    )
    ends_at = Instant(metadata={"description": "Optional; checked against the treatment type's durations"})


def override_reason_field() -> ma.fields.String:
    return ma.fields.String(
        allow_none=True,  # null: no override, as an appointment without one reads
        validate=ma.validate.Length(min=1, max=500),
        metadata={
            "description": "A staff key's reason for booking past the booking policy (recorded with the key); "
            "a frontend key sending it is a 403"
        },
    )


class BookingInputSchema(SlotInputSchema):
    patient_id = Id(required=True)
    course_id = Id(
        allow_none=True, metadata={"description": "Defaults to the patient's one active course of this treatment type"}
    )
    area = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(max=40),
        metadata={"description": "Treatment area, from the type's allowed_areas"},
    )
    override_reason = override_reason_field()


class SlotOutputSchema(Schema):
    clinic_id = ma.fields.String()
    practitioner_id = ma.fields.String()
    room_id = ma.fields.String()
    treatment_type_id = ma.fields.String()
    starts_at = ClinicInstant()
    procedure_starts_at = ClinicInstant()
    ends_at = ClinicInstant()


def slot_request(data: dict[str, Any]) -> SlotRequest:
    fields: dict[str, Any] = {f: data.get(f) for f in SlotRequest.__dataclass_fields__}
    return SlotRequest(**fields)
