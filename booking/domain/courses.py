"""Course caps (rule 6): defaults from the indication, bounded by the treatment type."""

from __future__ import annotations

from typing import Any

from booking.domain.errors import InvalidInput
from booking.domain.rules import SESSION_KIND
from booking.domain.vocabulary import INDICATIONS


def course_defaults(kind: str, type_cap: int | None, data: dict[str, Any]) -> dict[str, Any]:
    """The course's values with the indication's defaults filled in and checked.

    A course is a series of microneedling sessions; its cap may not exceed the
    treatment type's own cap.
    """
    if kind != SESSION_KIND:
        raise InvalidInput({"treatment_type_id": ["A course is for a microneedling treatment type."]})
    defaults = INDICATIONS[data["indication"]]
    values: dict[str, Any] = {
        "treatment_type_id": data["treatment_type_id"],
        "indication": data["indication"],
        "max_sessions": data.get("max_sessions"),
        "max_sessions_per_365_days": data.get("max_sessions_per_365_days", defaults["max_sessions_per_365_days"]),
        "status": data.get("status", "active"),
        "notes": data.get("notes"),
    }
    if values["max_sessions"] is None:
        values["max_sessions"] = min(defaults["max_sessions"], type_cap or defaults["max_sessions"])
    if values["max_sessions"] < 1:
        raise InvalidInput({"max_sessions": ["Must be at least 1."]})
    if type_cap is not None and values["max_sessions"] > type_cap:
        raise InvalidInput({"max_sessions": [f"Must not exceed the treatment type's cap of {type_cap}."]})
    return values
