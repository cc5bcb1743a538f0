"""Treatment types: created with the kind's defaults, changed within its ranges, never of another kind."""

from __future__ import annotations

from sqlalchemy.orm import Session

from booking.domain.policy import DEFAULT_POLICY, Policy
from booking.domain.treatments import check_kind_unchanged, check_treatment_type, defaults_for
from booking.services import policies
from booking.services.changes import load_for_change
from models import TreatmentType


def create(db: Session, org: str, data: dict, defaults: Policy = DEFAULT_POLICY) -> TreatmentType:
    """`defaults`: the deployment's policy defaults, under the organization's (booking/domain/policy.py)."""
    data = dict(data)
    own_policy = data.pop("booking_policy", None)
    treatment_type = TreatmentType(organization_id=org, **check_treatment_type({**defaults_for(data["kind"]), **data}))
    policies.set_own(db, org, defaults, treatment_type, own_policy)
    db.add(treatment_type)
    db.flush()
    return treatment_type


def update(
    db: Session,
    org: str,
    treatment_type_id: str,
    data: dict,
    expected_version: int | None,
    defaults: Policy = DEFAULT_POLICY,
) -> TreatmentType:
    treatment_type = load_for_change(db, org, TreatmentType, treatment_type_id, expected_version, what="treatment type")
    data = dict(data)
    policies.set_own(db, org, defaults, treatment_type, data.pop("booking_policy", None))
    check_kind_unchanged(treatment_type.kind, data)
    current = {field: getattr(treatment_type, field) for field in ("name", "kind", *defaults_for(treatment_type.kind))}
    for field, value in check_treatment_type({**current, **data}).items():
        setattr(treatment_type, field, value)
    db.flush()
    return treatment_type
