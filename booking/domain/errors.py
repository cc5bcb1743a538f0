"""Typed domain errors: each carries the contract's `code` and the facts behind it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self
from zoneinfo import ZoneInfo


class DomainError(Exception):
    """`facts` may hold aware datetimes; `localized` shows them in a clinic's zone."""

    code = "domain_error"

    def __init__(self, detail: str, **facts: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.facts = facts

    def localized(self, zone: ZoneInfo) -> Self:
        self.facts = _localize(self.facts, zone)
        return self


def _localize(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, dict):
        return {k: _localize(v, zone) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_localize(v, zone) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(zone)
    return value


class InvalidInput(DomainError):
    """Input that is well-formed but breaks a rule; `errors` is keyed by field."""

    code = "validation_error"

    def __init__(self, errors: dict[str, Any], detail: str = "The request has invalid fields.") -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


class NotFound(DomainError):
    code = "not_found"


class InUse(DomainError):
    code = "in_use"


class SlotUnavailable(DomainError):
    """A resource is already claimed; `conflicts` lists what it collided with."""

    code = "slot_unavailable"


class CoursePlanIncomplete(DomainError):
    """A course plan asked to hold has a session that cannot be placed: `session` (its number)
    and `reason` (the rule's code, detail and earliest_start); nothing was held."""

    code = "course_plan_incomplete"


class InvalidTransition(DomainError):
    code = "invalid_transition"


class HoldExpired(DomainError):
    code = "hold_expired"


class IntervalTooShort(DomainError):
    code = "interval_too_short"


class NumbingLeadTooShort(DomainError):
    code = "numbing_lead_too_short"


class ConsultationRequired(DomainError):
    code = "consultation_required"


class Contraindicated(DomainError):
    code = "contraindicated"


class CourseComplete(DomainError):
    code = "course_complete"


class OutsideWorkingHours(DomainError):
    code = "outside_working_hours"


class NotQualified(DomainError):
    code = "not_qualified"


class AreaNotAllowed(DomainError):
    code = "area_not_allowed"


class TooSoon(DomainError):
    """Closer than the booking policy's minimum notice; `earliest_start` is the first allowed start."""

    code = "too_soon"


class TooFarAhead(DomainError):
    code = "too_far_ahead"


class OffGrid(DomainError):
    code = "off_grid"


class SameDayNotAllowed(DomainError):
    code = "same_day_not_allowed"


class CancellationWindowPassed(DomainError):
    code = "cancellation_window_passed"


class DailyLimitReached(DomainError):
    code = "daily_limit_reached"


class NotBookableOnline(DomainError):
    code = "not_bookable_online"


class Forbidden(DomainError):
    """The key may not do this at all (a frontend key recording clinical facts or overriding a policy)."""

    code = "forbidden"


class OriginNotAllowed(DomainError):
    """A publishable key used from a browser origin it does not list."""

    code = "origin_not_allowed"


class ManageLinkEnded(DomainError):
    """A patient's manage link whose appointment is no longer booked (cancelled, rescheduled,
    checked in, completed, a no-show): it ended with the appointment."""

    code = "manage_link_ended"


class BookingLinkEnded(DomainError):
    """A patient's booking link that expired or was revoked: the clinic sends a new one."""

    code = "booking_link_ended"


class CourseAlreadyActive(DomainError):
    """A patient has at most one active course per treatment type; `course_id` names it."""

    code = "course_already_active"


class DeviceCountTooLow(DomainError):
    """More needlings overlap than the new device count; `conflicts` lists them."""

    code = "device_count_too_low"


class BookingsChanging(DomainError):
    """Another request is changing a booking the change must account for; retry."""

    code = "bookings_changing"


class VersionMismatch(DomainError):
    """A change made on condition that the object is still at the version the caller read."""

    code = "precondition_failed"
