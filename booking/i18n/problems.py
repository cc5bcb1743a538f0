"""A refusal's `title` and `detail` as a patient reads them, from its `code` and its facts.

The domain's own `detail` (booking/domain) is written for the integrator; these are written for
the person at the booking page, in their language, with instants on the clinic's clock and
durations and numbers as Babel writes them there. A code with no message here keeps the
integrator's English (and the answer says `Content-Language: en`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from . import N_, Text

# The titles of the statuses a booking page's routes answer (RFC 9457 `title`: the HTTP phrase).
TITLES = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    409: N_("Conflict"),
    410: N_("Gone"),
    412: N_("Precondition Failed"),
    422: N_("Unprocessable Content"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
}


def _when(t: Text, facts: Mapping[str, Any], name: str) -> str:
    value = facts.get(name)
    if isinstance(value, datetime):
        return t.when(value)
    if isinstance(value, str):
        return t.when(datetime.fromisoformat(value))
    return ""


def _too_soon(t: Text, f: Mapping[str, Any]) -> str:
    return t.gettext(
        "This time is too soon: book at least %(notice)s ahead. The earliest start is %(earliest)s.",
        notice=t.duration(timedelta(minutes=f["min_notice_minutes"])),
        earliest=_when(t, f, "earliest_start"),
    )


def _too_far_ahead(t: Text, f: Mapping[str, Any]) -> str:
    return t.ngettext(
        "Bookings open %(num)s day ahead: the latest start is %(latest)s.",
        "Bookings open %(num)s days ahead: the latest start is %(latest)s.",
        f["horizon_days"],
        latest=_when(t, f, "latest_start"),
    )


def _off_grid(t: Text, f: Mapping[str, Any]) -> str:
    return t.gettext(
        "Visits start every %(grid)s on the clinic's clock. The next start is %(earliest)s.",
        grid=t.duration(timedelta(minutes=f["grid_minutes"])),
        earliest=_when(t, f, "earliest_start"),
    )


def _same_day(t: Text, f: Mapping[str, Any]) -> str:
    return t.gettext(
        "This clinic does not take bookings for today. The earliest start is %(earliest)s.",
        earliest=_when(t, f, "earliest_start"),
    )


def _cutoff(t: Text, f: Mapping[str, Any]) -> str:
    return t.gettext(
        "This booking can no longer be changed online: changes close %(cutoff)s before the visit, at "
        "%(deadline)s. Please call the clinic.",
        cutoff=t.duration(timedelta(hours=f["cancellation_cutoff_hours"])),
        deadline=_when(t, f, "deadline"),
    )


def _daily_limit(t: Text, f: Mapping[str, Any]) -> str:
    day = f.get("date")
    return t.gettext(
        "The practitioner is fully booked on %(day)s. Please choose another day.",
        day=t.day(date.fromisoformat(day)) if isinstance(day, str) else "",
    )


def _not_bookable_online(t: Text, f: Mapping[str, Any]) -> str:
    if f.get("what") == "practitioner":
        return t.gettext("This practitioner cannot be booked online. Please call the clinic.")
    return t.gettext("This treatment cannot be booked online. Please call the clinic.")


def _interval(t: Text, f: Mapping[str, Any]) -> str:
    return t.gettext(
        "Your sessions must be spaced further apart for your skin to heal. The earliest start is %(earliest)s.",
        earliest=_when(t, f, "earliest_start"),
    )


def _contraindicated(t: Text, f: Mapping[str, Any]) -> str:
    if f.get("earliest_start"):
        return t.gettext(
            "A condition noted at your skin assessment rules this session out until %(earliest)s.",
            earliest=_when(t, f, "earliest_start"),
        )
    return t.gettext("A condition noted at your skin assessment rules this session out. Please speak to the clinic.")


def _course_complete(t: Text, f: Mapping[str, Any]) -> str:
    if f.get("earliest_start"):
        return t.gettext(
            "This treatment is limited in any year: the earliest start is %(earliest)s.",
            earliest=_when(t, f, "earliest_start"),
        )
    return t.gettext("Your course of treatment is complete. A review with the clinic can start a new one.")


def _plain(message: str) -> Callable[[Text, Mapping[str, Any]], str]:
    return lambda t, _facts: t.gettext(message)


DETAILS: dict[str, Callable[[Text, Mapping[str, Any]], str]] = {
    "too_soon": _too_soon,
    "too_far_ahead": _too_far_ahead,
    "off_grid": _off_grid,
    "same_day_not_allowed": _same_day,
    "cancellation_window_passed": _cutoff,
    "daily_limit_reached": _daily_limit,
    "not_bookable_online": _not_bookable_online,
    "interval_too_short": _interval,
    "contraindicated": _contraindicated,
    "course_complete": _course_complete,
    "consultation_required": _plain(
        N_("A consultation and skin assessment come first: please book a consultation before this session.")
    ),
    "numbing_lead_too_short": _plain(N_("The numbing cream needs more time to work before the needling starts.")),
    "outside_working_hours": _plain(N_("This time is outside the clinic's or the practitioner's hours.")),
    "not_qualified": _plain(N_("This practitioner or room does not offer this treatment here.")),
    "area_not_allowed": _plain(N_("This treatment is not offered on this area.")),
    "slot_unavailable": _plain(N_("This time has just been taken. Please choose another.")),
    "hold_expired": _plain(N_("The time held for you has run out. Please choose a time again.")),
    "invalid_transition": _plain(N_("This has already been done.")),
    "manage_link_ended": _plain(N_("This link has ended: the booking is no longer open to changes here.")),
    "booking_link_ended": _plain(N_("This booking link has ended: please ask the clinic for a new one.")),
    "not_found": _plain(N_("This link or booking was not found.")),
    "validation_error": _plain(N_("Some details are missing or not valid.")),
    "rate_limited": _plain(N_("Too many attempts. Please wait a moment and try again.")),
}


def text(code: str, status: int, facts: Mapping[str, Any], t: Text) -> tuple[str, str] | None:
    """(title, detail) in `t`'s language, or None where the code has no patient message."""
    message = DETAILS.get(code)
    if message is None or status not in TITLES:
        return None
    try:
        detail = message(t, facts)
    except (KeyError, TypeError, ValueError):  # a fact missing: the integrator's English stays
        return None
    return t.gettext(TITLES[status]), detail
