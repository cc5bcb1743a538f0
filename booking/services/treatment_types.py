"""Treatment types: created with the kind's defaults, changed within its ranges, never of another kind."""

from __future__ import annotations

from sqlalchemy.orm import Session

from booking.domain.treatments import check_kind_unchanged, check_treatment_type, defaults_for
from booking.services.changes import load_for_change
from models import TreatmentType


def create(db: Session, org: str, data: dict) -> TreatmentType:
    treatment_type = TreatmentType(organization_id=org, **check_treatment_type({**defaults_for(data["kind"]), **data}))
    db.add(treatment_type)
    db.flush()
    return treatment_type


def update(db: Session, org: str, treatment_type_id: str, data: dict, expected_version: int | None) -> TreatmentType:
    treatment_type = load_for_change(db, org, TreatmentType, treatment_type_id, expected_version, what="treatment type")
    check_kind_unchanged(treatment_type.kind, data)
    current = {field: getattr(treatment_type, field) for field in ("name", "kind", *defaults_for(treatment_type.kind))}
    for field, value in check_treatment_type({**current, **data}).items():
        setattr(treatment_type, field, value)
    db.flush()
    return treatment_type
