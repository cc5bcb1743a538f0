"""FHIR R4 views of the schedule: plain functions from models and plain values to FHIR JSON dicts,
and the parsing of FHIR search parameters (date prefixes, references, tokens, cursors).

Ids: FHIR ids may hold only letters, digits, '-' and '.', so `prac_01j...` is shown as
`prac-01j...`; both spellings are accepted on the way in. A Schedule is one practitioner at one
clinic, `{practitioner}.{clinic}` (e.g. `prac-01j....cln-01j...`), stable as long as both exist.
Holds appear as Appointments (and busy-tentative Slots) under their own `hold-...` ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain import clock, cursors
from booking.domain.availability import Slot
from booking.domain.errors import InvalidInput
from booking.domain.weekly import format_hhmm
from models import Appointment, Clinic, Hold, OpeningHours, Patient, Practitioner, TreatmentType
from models.base import Timestamped

FHIR_VERSION = "4.0.1"
# The FHIR core extension for an IANA zone (http://hl7.org/fhir/extensions/StructureDefinition-timezone.html).
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"
# When the needling starts, after the numbing cream: the one instant FHIR has no element for.
PROCEDURE_START_EXTENSION = "urn:needlebook:fhir:procedure-start"
TREATMENT_TYPE_SYSTEM = "urn:needlebook:treatment-type"
PATIENT_SYSTEM = "urn:needlebook:patient"
CANCEL_REASON_SYSTEM = "urn:needlebook:cancel-reason"
# A course plan's sessions (its holds, then the appointments booked from them) share this identifier.
COURSE_PLAN_SYSTEM = "urn:needlebook:course-plan"

APPOINTMENT_STATUS = {
    "booked": "booked",
    "checked_in": "arrived",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "no_show": "noshow",
}
HOLD_STATUS = {"frontend": "pending", "follow_up": "proposed", "course_plan": "pending", "waitlist": "proposed"}
# Every code of FHIR R4's AppointmentStatus: a valid code we never produce matches nothing.
FHIR_APPOINTMENT_STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
SLOT_STATUSES = ("busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error")

# Slot search: the window of slot starts when `start` leaves it open, and the most one search spans.
DEFAULT_SLOT_WINDOW = timedelta(days=7)
MAX_SLOT_WINDOW = timedelta(days=31)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- ids -----------------------------------------------------------------------------------------


def fhir_id(api_id: str) -> str:
    return api_id.replace("_", "-", 1)


def api_id(value: str) -> str:
    """Our id for a FHIR id; our ids are `<prefix>_<26 chars>` with no '-' anywhere else."""
    return value.replace("-", "_", 1)


def schedule_id(practitioner_id: str, clinic_id: str) -> str:
    return f"{fhir_id(practitioner_id)}.{fhir_id(clinic_id)}"


def parse_schedule_id(value: str) -> tuple[str, str] | None:
    """(practitioner id, clinic id), or None for a value that cannot name a schedule."""
    practitioner, dot, clinic = value.partition(".")
    if not dot or not practitioner or not clinic:
        return None
    return api_id(practitioner), api_id(clinic)


# --- values --------------------------------------------------------------------------------------


def instant(value: datetime, zone: ZoneInfo | timezone = UTC) -> str:
    """A FHIR instant with the offset of `zone` (the clinic's, for anything a person reads)."""
    return clock.shown_in(value, zone).isoformat(timespec="seconds")


def _meta(obj: Timestamped, zone: ZoneInfo | timezone = UTC) -> dict[str, Any]:
    return {"versionId": str(obj.version), "lastUpdated": instant(obj.updated_at, zone)}


def service_type(treatment_type: TreatmentType) -> dict[str, Any]:
    return {
        "coding": [
            {"system": TREATMENT_TYPE_SYSTEM, "code": fhir_id(treatment_type.id), "display": treatment_type.name}
        ],
        "text": treatment_type.name,
    }


def _reference(kind: str, obj: Practitioner | Clinic, display: str | None = None) -> dict[str, str]:
    return {"reference": f"{kind}/{fhir_id(obj.id)}", "display": display or obj.name}


def _procedure_start(value: datetime, zone: ZoneInfo) -> dict[str, str]:
    return {"url": PROCEDURE_START_EXTENSION, "valueInstant": instant(value, zone)}


# --- resources -----------------------------------------------------------------------------------


def practitioner(obj: Practitioner) -> dict[str, Any]:
    resource = {
        "resourceType": "Practitioner",
        "id": fhir_id(obj.id),
        "meta": _meta(obj),
        "active": obj.archived_at is None,
        "name": [{"text": obj.name}],
    }
    if obj.email:  # a work address; patients' contact data never appears in these views
        resource["telecom"] = [{"system": "email", "value": obj.email, "use": "work"}]
    return resource


def location(clinic: Clinic) -> dict[str, Any]:
    zone = ZoneInfo(clinic.timezone)
    resource = {
        "resourceType": "Location",
        "id": fhir_id(clinic.id),
        "meta": _meta(clinic, zone),
        "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": clinic.timezone}],
        "status": "inactive" if clinic.archived_at else "active",
        "name": clinic.name,
        "description": f"Clinic; local times are in {clinic.timezone}.",
        "mode": "instance",
    }
    if clinic.address:
        resource["address"] = {"text": clinic.address}
    hours = hours_of_operation(clinic.opening_hours)
    if hours:
        resource["hoursOfOperation"] = hours
    return resource


def hours_of_operation(opening_hours: Iterable[OpeningHours]) -> list[dict[str, Any]]:
    """Weekly opening intervals grouped by times: one entry per (opening, closing) pair."""
    by_times: dict[tuple[int, int], list[str]] = {}
    for entry in opening_hours:
        by_times.setdefault((entry.start_minute, entry.end_minute), []).append(WEEKDAYS[entry.weekday])
    result = []
    for (start, end), days in by_times.items():
        if (start, end) == (0, 24 * 60):
            result.append({"daysOfWeek": days, "allDay": True})
        else:  # a FHIR time stops at 23:59:59; an interval running to midnight ends there
            closing = "23:59:59" if end == 24 * 60 else f"{format_hhmm(end)}:00"
            result.append({"daysOfWeek": days, "openingTime": f"{format_hhmm(start)}:00", "closingTime": closing})
    return result


def schedule(
    practitioner_obj: Practitioner, clinic: Clinic, treatment_types: Iterable[TreatmentType]
) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": schedule_id(practitioner_obj.id, clinic.id),
        "active": True,
        "serviceType": [service_type(t) for t in treatment_types],
        "actor": [_reference("Practitioner", practitioner_obj), _reference("Location", clinic)],
        "comment": f"{practitioner_obj.name} at {clinic.name}; times in {clinic.timezone}.",
    }


def free_slot(slot: Slot, *, treatment_type: TreatmentType, zone_name: str) -> dict[str, Any]:
    """An availability-engine slot: start = the patient arrives (numbing begins), end = they leave."""
    zone = ZoneInfo(zone_name)
    key = "|".join((slot.practitioner_id, slot.clinic_id, slot.treatment_type_id, instant(slot.starts_at)))
    return {
        "resourceType": "Slot",
        "id": "free-" + hashlib.sha256(key.encode()).hexdigest()[:40],
        "extension": [_procedure_start(slot.procedure_starts_at, zone)],
        "serviceType": [service_type(treatment_type)],
        "schedule": {"reference": f"Schedule/{schedule_id(slot.practitioner_id, slot.clinic_id)}"},
        "status": "free",
        "start": instant(slot.starts_at, zone),
        "end": instant(slot.ends_at, zone),
    }


def busy_slot(booking: Appointment | Hold, *, treatment_type: TreatmentType, tentative: bool) -> dict[str, Any]:
    """An appointment (busy) or a live hold (busy-tentative), under the same id as its Appointment.

    It spans the whole visit; the practitioner is free while the cream works, so a free
    slot may start inside a busy one's numbing phase.
    """
    zone = ZoneInfo(booking.clinic.timezone)
    return {
        "resourceType": "Slot",
        "id": fhir_id(booking.id),
        "extension": [_procedure_start(booking.procedure_starts_at, zone)],
        "serviceType": [service_type(treatment_type)],
        "schedule": {"reference": f"Schedule/{schedule_id(booking.practitioner_id, booking.clinic_id)}"},
        "status": "busy-tentative" if tentative else "busy",
        "start": instant(booking.starts_at, zone),
        "end": instant(booking.ends_at, zone),
    }


def appointment(
    booking: Appointment | Hold,
    *,
    practitioner_obj: Practitioner,
    patient: Patient | None,
    treatment_type: TreatmentType,
) -> dict[str, Any]:
    """An appointment, or a live hold (models.Hold: pending, or proposed for a follow-up); a booking
    page's hold has no patient until it is booked, and so no patient participant."""
    zone = ZoneInfo(booking.clinic.timezone)
    is_hold = isinstance(booking, Hold)
    resource = {
        "resourceType": "Appointment",
        "id": fhir_id(booking.id),
        "meta": _meta(booking, zone),
        "extension": [_procedure_start(booking.procedure_starts_at, zone)],
        "status": HOLD_STATUS[booking.source] if isinstance(booking, Hold) else APPOINTMENT_STATUS[booking.status],
        "serviceType": [service_type(treatment_type)],
        "description": treatment_type.name,
        "start": instant(booking.starts_at, zone),
        "end": instant(booking.ends_at, zone),
        "minutesDuration": max(1, int((booking.ends_at - booking.starts_at).total_seconds() // 60)),
        "created": instant(booking.created_at, zone),
    }
    if booking.course_plan_id is not None:
        resource["identifier"] = [{"system": COURSE_PLAN_SYSTEM, "value": booking.course_plan_id}]
    if isinstance(booking, Hold):
        resource["comment"] = f"Held until {instant(booking.expires_at, zone)}."
    elif booking.status == "cancelled" and booking.cancel_reason:
        resource["cancelationReason"] = {
            "coding": [{"system": CANCEL_REASON_SYSTEM, "code": booking.cancel_reason}],
            "text": booking.cancel_note or booking.cancel_reason,
        }
    participation = "tentative" if is_hold else "accepted"
    participants: list[dict[str, Any]] = [
        {"actor": _reference("Practitioner", practitioner_obj), "required": "required", "status": "accepted"},
        {"actor": _reference("Location", booking.clinic), "required": "required", "status": "accepted"},
    ]
    resource["participant"] = participants
    if patient is not None:
        # Display only: the patient's name and our id, never their contact data.
        participants.append(
            {
                "actor": {
                    "type": "Patient",
                    "identifier": {"system": PATIENT_SYSTEM, "value": patient.id},
                    "display": patient.name,
                },
                "required": "required",
                "status": participation,
            }
        )
    return resource


def searchset(base: str, resources: list[dict], *, total: int, self_url: str, next_url: str | None) -> dict:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    410: "deleted",
    415: "not-supported",
    429: "throttled",
    500: "exception",
}


def operation_outcome(status: int, issues: list[tuple[str, str | None]]) -> dict:
    """`issues`: (diagnostics, the search parameter it is about or None)."""
    code = ISSUE_CODES.get(status, "processing")
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "diagnostics": diagnostics,
                **({"expression": [parameter]} if parameter else {}),
            }
            for diagnostics, parameter in issues
        ],
    }


# The search parameters each resource supports: the CapabilityStatement is written from this.
SEARCH_PARAMS = {
    "Practitioner": [
        ("_id", "token", "Logical id"),
        ("name", "string", "Starts a word of the name (case-insensitive)"),
    ],
    "Location": [("_id", "token", "Logical id"), ("name", "string", "Starts a word of the name (case-insensitive)")],
    "Schedule": [
        ("_id", "token", "Logical id: {practitioner id}.{location id}"),
        ("actor", "reference", "Practitioner/{id} or Location/{id}"),
    ],
    "Slot": [
        ("schedule", "reference", "Schedule/{practitioner id}.{location id}"),
        (
            "start",
            "date",
            "Prefixes eq, ge, gt, le, lt; repeat to bound both ends. Without a lower "
            "bound: from today 00:00 UTC, without an upper: 7 days after the lower; "
            "at most 31 days. Free slots start at least the minimum notice from now.",
        ),
        ("status", "token", "free, busy (appointments) or busy-tentative (live holds)"),
        ("service-type", "token", "A treatment type id (urn:needlebook:treatment-type)"),
    ],
    "Appointment": [
        ("_id", "token", "Logical id (appt-... or hold-...)"),
        ("date", "date", "Appointment start; prefixes eq, ge, gt, le, lt"),
        ("practitioner", "reference", "Practitioner/{id} or the id"),
        ("location", "reference", "Location/{id} or the id"),
        (
            "status",
            "token",
            "booked, arrived, fulfilled, cancelled, noshow; holds: pending "
            "(a frontend's or a course plan's), proposed (a follow-up proposal)",
        ),
        ("identifier", "token", "A course plan's sessions: urn:needlebook:course-plan|{course plan id}"),
    ],
}
COMMON_PARAMS = [
    ("_count", "number", "Page size: default 50, at most 200"),
    ("_cursor", "string", "Opaque; follow the Bundle's `next` link"),
]


def capability_statement(*, base: str, version: str, released: str) -> dict:
    def resource(kind: str) -> dict:
        return {
            "type": kind,
            "interaction": [{"code": "search-type"}] + ([] if kind == "Slot" else [{"code": "read"}]),
            "searchParam": [
                {"name": n, "type": t, "documentation": d} for n, t, d in SEARCH_PARAMS[kind] + COMMON_PARAMS
            ],
        }

    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": released,
        "kind": "instance",
        "software": {"name": "Needlebook", "version": version},
        "implementation": {"description": "Needlebook FHIR R4 read views of the clinic schedule", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Read-only. Every request, this one included, needs an API key with the "
                "`read` scope: `Authorization: Bearer <key>`; another organization's "
                "objects are 404s. Instants carry the clinic's UTC offset.",
                "security": {"description": "Bearer API keys, the same as /v1."},
                "resource": [resource(kind) for kind in SEARCH_PARAMS],
            }
        ],
    }


# --- search parameters ---------------------------------------------------------------------------

_DATE = re.compile(
    r"(?P<prefix>[a-z]{2})?(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?P<time>T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?"
)
PREFIXES = ("eq", "ge", "gt", "le", "lt")

Bounds = tuple[datetime | None, datetime | None]  # [lower, upper): either may be open


def date_bounds(values: list[str], parameter: str) -> Bounds:
    """FHIR date search values ANDed into [lower, upper) on an instant.

    A value names a range at its precision (`2027-01-04` is that UTC day; a time needs an
    offset); `ge` and `gt` take instants from its start or after its end, `le` and `lt` up
    to its end or before its start, `eq` (no prefix) within it.
    """
    lower, upper = None, None
    for value in values:
        start, end, prefix = _date_range(value, parameter)
        low, high = {
            "eq": (start, end),
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
        }[prefix]
        lower = low if lower is None or (low is not None and low > lower) else lower
        upper = high if upper is None or (high is not None and high < upper) else upper
    return lower, upper


def _date_range(value: str, parameter: str) -> tuple[datetime, datetime, str]:
    match = _DATE.fullmatch(value)
    prefix = (match and match["prefix"]) or "eq"
    if match is None or prefix not in PREFIXES:
        raise InvalidInput(
            {
                parameter: [
                    f"'{value}' is not a FHIR date search value: an optional prefix "
                    f"({', '.join(PREFIXES)}) and a date or an instant with an offset."
                ]
            }
        )
    try:
        if match["time"]:
            text = value[len(match["prefix"] or "") :].replace("Z", "+00:00")
            start = datetime.fromisoformat(text)
            if start.tzinfo is None:
                raise InvalidInput({parameter: [f"'{value}' needs an offset, e.g. Z or +01:00."]})
            if not clock.in_range(start):
                raise InvalidInput({parameter: [f"'{value}': {clock.RANGE_MESSAGE}"]})
            seconds = text[11:].split("+")[0].split("-")[0]
            step = (
                timedelta(microseconds=1)
                if "." in seconds
                else timedelta(seconds=1)
                if seconds.count(":") == 2
                else timedelta(minutes=1)
            )
            return start, start + step, prefix
        year, month, day = int(match["year"]), int(match["month"] or 1), int(match["day"] or 1)
        first = date(year, month, day)
        if not clock.in_range(first):
            raise InvalidInput({parameter: [f"'{value}': {clock.RANGE_MESSAGE}"]})
        if match["day"]:
            after = first + timedelta(days=1)
        elif match["month"]:
            after = date(year + month // 12, month % 12 + 1, 1)
        else:
            after = date(year + 1, 1, 1)
    except ValueError as exc:
        raise InvalidInput({parameter: [f"'{value}' is not a valid date: {exc}."]}) from exc
    return _utc_midnight(first), _utc_midnight(after), prefix


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def slot_window(bounds: Bounds, now: datetime) -> tuple[datetime, datetime]:
    """The slot starts a Slot search covers: see SEARCH_PARAMS['Slot'] for the defaults."""
    lower, upper = bounds
    if lower is None:
        lower = upper - DEFAULT_SLOT_WINDOW if upper is not None else _utc_midnight(now.date())
    if upper is None:
        upper = lower + DEFAULT_SLOT_WINDOW
    if upper - lower > MAX_SLOT_WINDOW:
        raise InvalidInput({"start": [f"A Slot search spans at most {MAX_SLOT_WINDOW.days} days of starts."]})
    return lower, upper


def tokens(values: list[str]) -> set[str]:
    """Token values, comma meaning OR; a `system|code` value is taken by its code."""
    return {item.rpartition("|")[2] for value in values for item in value.split(",") if item}


def references(values: list[str], parameter: str, kinds: tuple[str, ...]) -> dict[str, set[str]]:
    """{resource type: our ids} for reference values `Type/id`, a URL ending so, or a bare id
    (of the first of `kinds`); comma means OR."""
    found: dict[str, set[str]] = {kind: set() for kind in kinds}
    for value in values:
        for item in value.split(","):
            parts = item.rstrip("/").split("/")
            kind, target = (parts[-2], parts[-1]) if len(parts) >= 2 else (kinds[0], parts[-1])
            if kind not in kinds or not target:
                raise InvalidInput({parameter: [f"'{item}' must reference {' or '.join(kinds)}."]})
            found[kind].add(target if kind == "Schedule" else api_id(target))
    return found


def search_cursor(cursor: str) -> str:
    """The key a Bundle's `_cursor` holds; anything else is a 400 naming the parameter."""
    key = cursors.decode_cursor(cursor)
    if key is None:
        raise InvalidInput({"_cursor": ["Invalid cursor; follow the Bundle's next link."]})
    return key


def slot_key(resource: dict) -> str:
    """Slots are ordered by start (in UTC), then id: the keyset of their pages."""
    start = datetime.fromisoformat(resource["start"]).astimezone(UTC)
    return f"{start.isoformat()}|{resource['id']}"
