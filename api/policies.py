"""The `booking_policy` object of the organization, clinics and treatment types.

Written: the object's own fields (a value sets one, null clears it and the field is inherited
again). Read: the effective policy there, field by field (organization defaults, then the clinic
or the treatment type; a booking at a clinic for a treatment type takes the treatment type's).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, has_app_context
from sqlalchemy.orm import object_session

from booking.domain import policy
from booking.services import policies
from models import Clinic, Organization, TreatmentType

from .base import Schema
from .config import policy_defaults


def _whole(name: str, description: str) -> ma.fields.Integer:
    low, high = policy.BOUNDS[name]
    return ma.fields.Integer(
        strict=True, allow_none=True, validate=ma.validate.Range(low, high), metadata={"description": description}
    )


def _flag(description: str) -> ma.fields.Boolean:
    return ma.fields.Boolean(allow_none=True, metadata={"description": description})


class BookingPolicySchema(Schema):
    min_notice_minutes = _whole("min_notice_minutes", "A start at least this far ahead (default 120)")
    horizon_days = _whole("horizon_days", "A start less than this many days ahead (default 90)")
    grid_minutes = _whole("grid_minutes", "Starts at local midnight plus multiples of this (default 15)")
    same_day_booking = _flag("false: no booking for later today (default true)")
    cancellation_cutoff_hours = _whole(
        "cancellation_cutoff_hours", "A frontend cancels or reschedules at least this long before the start (24)"
    )
    max_sessions_per_practitioner_per_day = _whole(
        "max_sessions_per_practitioner_per_day", "At most this many sessions per practitioner per local day (none)"
    )
    bookable_online = _flag("false: a frontend key cannot book it (default true)")
    hold_minutes = _whole("hold_minutes", "A hold lasts this long unless POST /v1/holds asks otherwise (default 10)")
    max_hold_minutes = _whole("max_hold_minutes", "The longest a hold may last, extension included (default 30)")


class BookingPolicy(ma.fields.Nested):
    """Loads the own fields given; dumps the effective policy of the object."""

    def __init__(self, **kwargs):
        super().__init__(
            BookingPolicySchema,
            metadata={
                "description": "Read: the effective booking policy here. Write: this object's own fields "
                "(null clears one: it is inherited again; a value equal to the effective one changes nothing)"
            },
            **kwargs,
        )

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]  # Nested and Field disagree
        return effective_of(obj).as_dict()


def effective_of(owner: Organization | Clinic | TreatmentType) -> policy.Policy:
    # Outside a request (a script or test dumping rows) the code's own defaults stand in for the
    # deployment's; the owner's session resolves the organization's layer either way.
    defaults = policy_defaults(current_app.config) if has_app_context() else policy.DEFAULT_POLICY
    if isinstance(owner, Organization):
        return policy.effective(defaults, owner.booking_policy)
    session = object_session(owner)
    assert session is not None
    return policies.resolve(
        session,
        owner.organization_id,
        defaults,
        owner if isinstance(owner, Clinic) else None,
        owner if isinstance(owner, TreatmentType) else None,
    )
