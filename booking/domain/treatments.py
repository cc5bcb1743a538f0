"""Treatment-type timings: the defaults of docs/rules.md and the ranges allowed on write."""

from __future__ import annotations

from typing import Any

from booking.domain.errors import InvalidInput
from booking.domain.rules import SESSION_KIND
from booking.domain.vocabulary import AREAS, CONSULTATION, DEFAULT_AREAS, FORBIDDEN_AREAS, KINDS, MICRONEEDLING, REVIEW

# (default, low, high) per kind; None as a default means the field does not
# apply to the kind and must stay empty.
_MICRONEEDLING = {
    "numbing_minutes": (30, 20, 60),  # rule 3: cream "takes 20-30 minutes"
    "prep_minutes": (5, 0, 15),  # rule 3: practitioner busy only while applying it
    "procedure_minutes": (30, 5, 240),  # rule 4
    "aftercare_minutes": (10, 0, 60),  # rule 4: serum and aftercare
    "turnover_minutes": (10, 0, 60),  # rule 4: cleaning, sterile needle change
    "min_interval_days": (28, 28, 365),  # rule 5: hard minimum 28 days
    "recommended_interval_days": (42, 28, 365),  # rule 5: window 28-42 days
    "max_sessions": (6, 1, 20),  # rule 6: the longest default course
    "consultation_valid_days": (180, 1, 730),  # rule 1
}
_CONSULTATION = {
    "numbing_minutes": (0, 0, 0),
    "prep_minutes": (0, 0, 0),
    "procedure_minutes": (30, 5, 240),
    "aftercare_minutes": (0, 0, 60),
    "turnover_minutes": (0, 0, 60),
}
_REVIEW = {**_CONSULTATION, "procedure_minutes": (15, 5, 120)}  # rule 7: 15 min, no turnover

LIMITS = {MICRONEEDLING: _MICRONEEDLING, CONSULTATION: _CONSULTATION, REVIEW: _REVIEW}
INTERVAL_FIELDS = (
    "min_interval_days",
    "recommended_interval_days",
    "max_sessions",
    "consultation_valid_days",
)


def defaults_for(kind: str) -> dict[str, Any]:
    values: dict[str, Any] = {field: default for field, (default, _, _) in LIMITS[kind].items()}
    for field in INTERVAL_FIELDS:
        values.setdefault(field, None)
    if kind == SESSION_KIND:
        values["allowed_areas"] = list(DEFAULT_AREAS)
        values["required_capability"] = "needling"
    else:
        values["allowed_areas"] = []
        values["required_capability"] = None
    return values


def check_treatment_type(values: dict[str, Any]) -> dict[str, Any]:
    """Validate a complete treatment type (defaults already merged).

    Returns the values; raises InvalidInput naming every field that is off.
    """
    kind = values.get("kind")
    if kind not in KINDS:
        raise InvalidInput({"kind": [f"Must be one of: {', '.join(KINDS)}."]})
    limits = LIMITS[kind]
    errors: dict[str, list[str]] = {}
    for field, (_, low, high) in limits.items():
        value = values.get(field)
        if value is None or not low <= value <= high:
            allowed = f"{low}" if low == high else f"between {low} and {high}"
            errors[field] = [f"Must be {allowed} for the {kind} kind."]
    for field in INTERVAL_FIELDS:
        if field not in limits and values.get(field) is not None:
            errors[field] = [f"Applies to microneedling only; must be null for the {kind} kind."]
    if kind == SESSION_KIND and not errors:
        if values["prep_minutes"] >= values["numbing_minutes"]:
            errors["prep_minutes"] = ["Must be shorter than numbing_minutes."]
        if values["recommended_interval_days"] < values["min_interval_days"]:
            errors["recommended_interval_days"] = ["Must be at least min_interval_days."]
    area_errors = check_areas(values.get("allowed_areas") or [])
    if area_errors:
        errors["allowed_areas"] = area_errors
    if kind == SESSION_KIND and not values.get("allowed_areas"):
        errors.setdefault("allowed_areas", []).append("A microneedling type needs at least one area.")
    if errors:
        raise InvalidInput(errors)
    return values


def check_areas(areas: list[str]) -> list[str]:
    messages = []
    for area in areas:
        if area in FORBIDDEN_AREAS:
            messages.append(f"'{area}' is never treated with microneedling.")
        elif area not in AREAS:
            messages.append(f"'{area}' is not one of: {', '.join(AREAS)}.")
    if len(set(areas)) != len(areas):
        messages.append("Areas must not repeat.")
    return messages


def check_kind_unchanged(kind: str, changes: dict[str, Any]) -> None:
    """A treatment type's kind never changes: its sessions, courses and rules depend on it."""
    if changes.get("kind", kind) != kind:
        raise InvalidInput({"kind": ["The kind of a treatment type cannot change; create a new one."]})
