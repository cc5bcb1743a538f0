"""Booking policies: the clinic's own rules for when a slot may be booked, and by whom.

A policy is set field by field on the organization (its defaults), on a clinic and on a
treatment type; the most specific object that sets a field wins (`effective`). The checks are
plain functions over that policy, the clinic's zone and the moment: they raise the contract's
refusal with the policy's value and, where there is one, the nearest instant that would do.

Who is bound (`Actor`): a booking frontend by every field; a staff key by the fields of when a
slot may be booked (notice, horizon, grid, same-day, the daily cap) unless it sends an
`override_reason`; the cancellation cut-off and `bookable_online` are a frontend's alone (the
front desk moves and books what patients may not). The scheduler acts as nobody: no policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from booking.domain.errors import (
    CancellationWindowPassed,
    DailyLimitReached,
    InvalidInput,
    NotBookableOnline,
    OffGrid,
    SameDayNotAllowed,
    TooFarAhead,
    TooSoon,
)
from booking.domain.weekly import local_instant

FRONTEND, STAFF = "frontend", "staff"
_DAY_MINUTES = 24 * 60
_INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True)
class Policy:
    min_notice_minutes: int = 120
    horizon_days: int = 90
    grid_minutes: int = 15
    same_day_booking: bool = True
    cancellation_cutoff_hours: int = 24
    max_sessions_per_practitioner_per_day: int | None = None
    bookable_online: bool = True
    hold_minutes: int = 10
    max_hold_minutes: int = 30

    @property
    def min_notice(self) -> timedelta:
        return timedelta(minutes=self.min_notice_minutes)

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.horizon_days)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_POLICY = Policy()


def deployment_defaults(min_notice_minutes: int, horizon_days: int, grid_minutes: int, hold_ttl_seconds: int) -> Policy:
    """The defaults of every organization's policy defaults, from the deployment's environment
    (AVAILABILITY_*, HOLD_TTL): read alike by the web app and the scheduler."""
    hold_minutes = max(1, hold_ttl_seconds // 60)
    return Policy(
        min_notice_minutes=min_notice_minutes,
        horizon_days=horizon_days,
        grid_minutes=grid_minutes,
        hold_minutes=hold_minutes,
        max_hold_minutes=max(Policy.max_hold_minutes, hold_minutes),
    )


FIELDS = tuple(f.name for f in fields(Policy))
# Bounds of each whole-number field (inclusive): what a PATCH may set.
BOUNDS: dict[str, tuple[int, int]] = {
    "min_notice_minutes": (0, 60 * 24 * 365),
    "horizon_days": (1, 3 * 365),
    "grid_minutes": (1, 12 * 60),
    "cancellation_cutoff_hours": (0, 24 * 365),
    "max_sessions_per_practitioner_per_day": (1, 200),
    "hold_minutes": (1, 24 * 60),
    "max_hold_minutes": (1, 24 * 60),
}
FLAGS = ("same_day_booking", "bookable_online")


def effective(defaults: Policy, *layers: Mapping[str, Any] | None) -> Policy:
    """`defaults` overlaid by each layer in turn (organization, clinic, treatment type), field by
    field: a layer sets only the fields it names with a value."""
    policy = defaults
    for layer in layers:
        if layer:
            policy = replace(policy, **{k: v for k, v in layer.items() if k in FIELDS and v is not None})
    return policy


def merged(own: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An object's own fields after a PATCH of them: a value sets a field, null clears it."""
    result = {k: v for k, v in (own or {}).items() if k in FIELDS and v is not None}
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def inconsistency(policy: Policy) -> dict[str, list[str]]:
    """What makes an effective policy unusable, keyed by field (empty: usable)."""
    if policy.hold_minutes > policy.max_hold_minutes:
        return {"hold_minutes": [f"Must not exceed max_hold_minutes ({policy.max_hold_minutes})."]}
    return {}


@dataclass(frozen=True)
class Actor:
    """Who asks: an API key's id and channel, and a staff key's reason for overriding the policy."""

    key_id: str | None
    channel: str
    override_reason: str | None = None
    # The defaults of the organization's defaults (the deployment's environment, api/config.py):
    # carried with the request so the services resolve policies without reading configuration.
    defaults: Policy = Policy()

    @property
    def frontend(self) -> bool:
        return self.channel == FRONTEND

    @property
    def bound(self) -> bool:
        """Bound by the policy's timing fields: a frontend always, staff unless overriding."""
        return self.frontend or not self.override_reason

    @property
    def overriding(self) -> bool:
        return not self.frontend and bool(self.override_reason)


def on_grid(start: datetime, grid_minutes: int, zone: ZoneInfo) -> bool:
    """A start at midnight plus a whole number of grid steps of the clinic's wall clock
    (so on a DST day the grid keeps to the clock, not to elapsed time)."""
    local = start.astimezone(zone)
    if local.second or local.microsecond:
        return False
    return (local.hour * 60 + local.minute) % grid_minutes == 0


def next_on_grid(instant: datetime, grid_minutes: int, zone: ZoneInfo) -> datetime:
    """The first grid start at or after `instant`."""
    local = instant.astimezone(zone)
    day = local.date()
    minute = local.hour * 60 + local.minute + (1 if local.second or local.microsecond else 0)
    while True:
        step = -(-minute // grid_minutes) * grid_minutes
        if step < _DAY_MINUTES:
            candidate = local_instant(day, step, zone)
            if candidate >= instant:  # a wall-clock minute skipped by spring-forward lands later
                return candidate
            minute = step + 1
            continue
        day, minute = day + timedelta(days=1), 0


def last_on_grid_before(instant: datetime, grid_minutes: int, zone: ZoneInfo) -> datetime:
    """The last grid start strictly before `instant`."""
    local = (instant - timedelta(microseconds=1)).astimezone(zone)
    day, minute = local.date(), local.hour * 60 + local.minute
    while True:
        candidate = local_instant(day, minute // grid_minutes * grid_minutes, zone)
        if candidate < instant:
            return candidate
        minute = minute // grid_minutes * grid_minutes - 1
        if minute < 0:
            day, minute = day - timedelta(days=1), _DAY_MINUTES - 1


def next_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    return local_instant(now.astimezone(zone).date() + timedelta(days=1), 0, zone)


def earliest_start(policy: Policy, now: datetime, zone: ZoneInfo) -> datetime:
    """The first start the policy allows at `now`: notice, then same-day, then the grid. Always
    after `now` (a booking starts in the future: with no notice, a start at this very instant is
    already past)."""
    first = max(now + policy.min_notice, now + _INSTANT)
    if not policy.same_day_booking:
        first = max(first, next_midnight(now, zone))
    return next_on_grid(first, policy.grid_minutes, zone)


def window(policy: Policy, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first allowed start, horizon end): the starts the timing fields allow, as a search window."""
    return earliest_start(policy, now, zone), now + policy.horizon


def check_start(policy: Policy, start: datetime, now: datetime, zone: ZoneInfo) -> None:
    """Notice, same-day, horizon and grid, in that order."""
    first = earliest_start(policy, now, zone)
    if start < now + policy.min_notice:
        raise TooSoon(
            f"Starts closer than the minimum notice of {policy.min_notice_minutes} minutes.",
            min_notice_minutes=policy.min_notice_minutes,
            earliest_start=first,
        )
    if not policy.same_day_booking and start.astimezone(zone).date() == now.astimezone(zone).date():
        raise SameDayNotAllowed(
            "This clinic does not take same-day bookings.", same_day_booking=False, earliest_start=first
        )
    end = now + policy.horizon
    if start >= end:
        raise TooFarAhead(
            f"Starts beyond the booking horizon of {policy.horizon_days} days.",
            horizon_days=policy.horizon_days,
            latest_start=last_on_grid_before(end, policy.grid_minutes, zone),
        )
    if not on_grid(start, policy.grid_minutes, zone):
        raise OffGrid(
            f"Starts must fall on the clinic's {policy.grid_minutes}-minute grid of its local clock.",
            grid_minutes=policy.grid_minutes,
            earliest_start=max(next_on_grid(start, policy.grid_minutes, zone), first),
        )


def check_daily_limit(policy: Policy, sessions_that_day: int, day: date) -> None:
    cap = policy.max_sessions_per_practitioner_per_day
    if cap is not None and sessions_that_day >= cap:
        raise DailyLimitReached(
            f"The practitioner already has {sessions_that_day} sessions on {day.isoformat()}, the clinic's cap.",
            max_sessions_per_practitioner_per_day=cap,
            date=day.isoformat(),
        )


def check_online(policy: Policy, practitioner_bookable_online: bool) -> None:
    if not policy.bookable_online:
        raise NotBookableOnline(
            "This treatment type cannot be booked online.", bookable_online=False, what="treatment_type"
        )
    if not practitioner_bookable_online:
        raise NotBookableOnline(
            "This practitioner cannot be booked online.", bookable_online=False, what="practitioner"
        )


def check_cutoff(policy: Policy, starts_at: datetime, now: datetime) -> None:
    """A frontend may not cancel or move an appointment later than the cut-off before its start."""
    deadline = starts_at - timedelta(hours=policy.cancellation_cutoff_hours)
    if now > deadline:
        raise CancellationWindowPassed(
            f"Changes close {policy.cancellation_cutoff_hours} hours before the start.",
            cancellation_cutoff_hours=policy.cancellation_cutoff_hours,
            deadline=deadline,
        )


def hold_length(policy: Policy, actor: Actor | None, asked: int | None) -> timedelta:
    """The hold's length: the policy's, or what was asked within [1, max_hold_minutes]
    (a staff key overriding may ask for up to a day)."""
    minutes = policy.hold_minutes if asked is None else asked
    ceiling = BOUNDS["max_hold_minutes"][1] if actor is not None and actor.overriding else policy.max_hold_minutes
    if actor is None:
        ceiling = max(ceiling, minutes)
    if not 1 <= minutes <= ceiling:
        raise InvalidInput({"hold_minutes": [f"Must be between 1 and {ceiling} (max_hold_minutes)."]})
    return timedelta(minutes=minutes)
