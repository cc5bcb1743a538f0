"""The fixed vocabularies of the domain; rules and sources (000-003) as numbered in docs/rules.md."""

from __future__ import annotations

from typing import TypedDict

CONSULTATION, MICRONEEDLING, REVIEW = "consultation", "microneedling", "review"
KINDS = (CONSULTATION, MICRONEEDLING, REVIEW)

# Rule 2: active acne, very sensitive skin and rosacea come from source 000; the
# rest are the usual clinical exclusions a skin assessment records.
CONTRAINDICATIONS = (
    "active_acne",
    "rosacea",
    "very_sensitive_skin",
    "skin_infection",
    "open_wound",
    "eczema_flare",
    "psoriasis_flare",
    "keloid_tendency",
    "pregnancy",
    "recent_isotretinoin",
)

# Rule 8: face and neck (000), thighs and stomach (000); never hands or underarms (002).
AREAS = ("face", "neck", "decolletage", "abdomen", "thighs", "back", "arms", "scalp")
FORBIDDEN_AREAS = ("hands", "underarms")
DEFAULT_AREAS = ("face", "neck", "decolletage", "abdomen", "thighs")


class Caps(TypedDict):
    max_sessions: int
    max_sessions_per_365_days: int | None


# Rule 6: caps per indication. Acne and other moderately deep scars: up to four;
# stretch marks and thermal burns: more (six); ageing: at most 2 in any 365 days.
INDICATIONS: dict[str, Caps] = {
    "acne_scars": {"max_sessions": 4, "max_sessions_per_365_days": None},
    "other_scars": {"max_sessions": 4, "max_sessions_per_365_days": None},
    "stretch_marks": {"max_sessions": 6, "max_sessions_per_365_days": None},
    "thermal_burns": {"max_sessions": 6, "max_sessions_per_365_days": None},
    "ageing": {"max_sessions": 6, "max_sessions_per_365_days": 2},
}

COURSE_STATUSES = ("active", "complete", "closed")
