"""iCalendar feeds of a practitioner's, room's or clinic's appointments and holds (icalendar).

Each appointment and hold is a VEVENT with a stable UID; SEQUENCE is the row's
version, so it grows with every change; STATUS is CONFIRMED, TENTATIVE for a live
hold, CANCELLED for a cancelled appointment or a hold that ended. Times are in the
clinic's zone, with its VTIMEZONE. A patient appears by initials only: feeds end up
in personal calendar apps, so they carry no contact data. A reschedule is the old
event cancelled and a new one: each names the other (RELATED-TO and a line of its
description), so a person reading either sees what happened.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from icalendar import Calendar, Event, Timezone
from sqlalchemy.orm import Session

from booking.domain import clock
from booking.domain.errors import InvalidInput, NotFound
from booking.domain.timing import Instants, Timing, prep_end, procedure_end
from booking.services import queries
from booking.services.changes import load_for_change
from models import Appointment, CalendarFeed, Clinic, Hold, Patient, Practitioner, Room, TreatmentType

PAST = timedelta(days=30)  # how far back a feed reaches
AHEAD = timedelta(days=365)
ENDED_HOLDS = timedelta(days=2)  # an ended hold stays in the feed as CANCELLED this long, so clients drop it
Owner = Practitioner | Room | Clinic
OWNERS: dict[str, type[Owner]] = {"practitioner": Practitioner, "room": Room, "clinic": Clinic}
_COLUMN = {"practitioner": "practitioner_id", "room": "room_id", "clinic": "clinic_id"}


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed(db: Session, org: str, owner_type: str, owner_id: str, name: str | None) -> tuple[CalendarFeed, str]:
    """A new feed token for one practitioner, room or clinic of the organization."""
    model = OWNERS[owner_type]
    owner = db.scalar(queries.of_organization(model, org).where(model.id == owner_id))
    if owner is None:
        raise InvalidInput({"owner_id": [f"Unknown {owner_type} '{owner_id}'."]})
    token = "ics_" + secrets.token_urlsafe(32)
    feed = CalendarFeed(
        organization_id=org,
        owner_type=owner_type,
        owner_id=owner_id,
        name=name,
        token_digest=digest(token),
        prefix=token[:12],
    )
    db.add(feed)
    db.flush()
    return feed, token


def find_feed(db: Session, owner_type: str, owner_id: str, token: str | None) -> CalendarFeed:
    """The live feed this token opens for this owner; anything else is the same NotFound."""
    feed = db.scalar(sa.select(CalendarFeed).where(CalendarFeed.token_digest == digest(token or "")))
    if feed is None or feed.revoked_at is not None or (feed.owner_type, feed.owner_id) != (owner_type, owner_id):
        raise NotFound("No calendar feed here (the token is unknown, revoked or for another calendar).")
    return feed


def render(db: Session, feed: CalendarFeed, now: datetime) -> bytes:
    # Session.get types a union of models as their base: the cast names the three it can be.
    owner = cast(Owner, db.get_one(OWNERS[feed.owner_type], feed.owner_id))
    column = _COLUMN[feed.owner_type]
    start, end = now - PAST, now + AHEAD
    appointments = list(
        db.scalars(
            sa.select(Appointment)
            .where(
                Appointment.organization_id == feed.organization_id,
                getattr(Appointment, column) == feed.owner_id,
                Appointment.starts_at >= start,
                Appointment.starts_at < end,
            )
            .order_by(Appointment.starts_at)
        )
    )
    holds = list(
        db.scalars(
            sa.select(Hold)
            .where(
                Hold.organization_id == feed.organization_id,
                getattr(Hold, column) == feed.owner_id,
                Hold.starts_at >= start,
                Hold.starts_at < end,
                # Live, or ended (ran out, or answered) less than ENDED_HOLDS ago.
                sa.or_(Hold.live(now - ENDED_HOLDS), Hold.updated_at > now - ENDED_HOLDS),
            )
            .order_by(Hold.starts_at)
        )
    )
    items = appointments + holds
    names = _lookup(db, items)
    names["rescheduled"] = _reschedules(db, appointments)

    calendar = Calendar()
    calendar.add("prodid", "-//Needlebook//Clinic schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{owner.name} (Needlebook)")
    if not isinstance(owner, Practitioner):  # a practitioner's feed may span clinics in several zones
        clinic = owner if isinstance(owner, Clinic) else db.get_one(Clinic, owner.clinic_id)
        calendar.add("x-wr-timezone", clinic.timezone)
    for item in items:
        calendar.add_component(_event(item, names, now))
    for zone in sorted({names["clinic"][item.clinic_id].timezone for item in items}):
        calendar.add_component(vtimezone(zone, (now - PAST).year - 1, (now + AHEAD).year + 1))
    return calendar.to_ical()


@lru_cache(maxsize=256)
def vtimezone(zone: str, first_year: int, last_year: int) -> Timezone:
    """The zone's VTIMEZONE for those years, with one RDATE per line.

    icalendar computes the transitions from zoneinfo, but writes each kind's dates as one
    comma-separated RDATE; ical.js and vobject read only the first of such a list, and then
    show every winter appointment in London an hour early. One date per RDATE property is the
    same rule (RFC 5545 3.8.5.2) in the form every common parser reads. Cached: computing the
    transitions walks the years; the component is only read afterwards.
    """
    timezone = Timezone.from_tzid(zone, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1))
    for observance in timezone.subcomponents:
        rdates = observance.get("RDATE")
        if rdates is None:
            continue
        dates = [value.dt for rdate in (rdates if isinstance(rdates, list) else [rdates]) for value in rdate.dts]
        del observance["RDATE"]
        for moment in dates:
            observance.add("RDATE", moment)
    return timezone


def _reschedules(db: Session, appointments: list[Appointment]) -> dict[str, tuple[str, str, datetime]]:
    """For each appointment that was rescheduled or is a reschedule: ("from" or "to", the other
    one's id, its start on its clinic's clock)."""
    ids = {a.id for a in appointments}
    earlier = {a.rescheduled_from for a in appointments if a.rescheduled_from}
    if not ids:
        return {}
    others = db.execute(
        sa.select(Appointment.id, Appointment.rescheduled_from, Appointment.starts_at, Clinic.timezone)
        .join(Clinic, Clinic.id == Appointment.clinic_id)
        .where(sa.or_(Appointment.rescheduled_from.in_(ids), Appointment.id.in_(earlier)))
    ).all()
    links: dict[str, tuple[str, str, datetime]] = {}
    for other in others:
        when = other.starts_at.astimezone(ZoneInfo(other.timezone))
        if other.rescheduled_from in ids:
            links[other.rescheduled_from] = ("to", other.id, when)
        if other.id in earlier:
            links.update({a.id: ("from", other.id, when) for a in appointments if a.rescheduled_from == other.id})
    return links


def _lookup(db: Session, items: Sequence[Appointment | Hold]) -> dict[str, dict[str, Any]]:
    """Names of the types, rooms, clinics and patients the events mention, in four queries."""

    def of(model: Any, ids: set[str]) -> dict[str, Any]:  # TreatmentType, Room or Clinic
        return {row.id: row for row in db.scalars(sa.select(model).where(model.id.in_(ids)))} if ids else {}

    return {
        "type": of(TreatmentType, {i.treatment_type_id for i in items}),
        "room": of(Room, {i.room_id for i in items}),
        "clinic": of(Clinic, {i.clinic_id for i in items}),
        "patient": dict(
            db.execute(sa.select(Patient.id, Patient.name).where(Patient.id.in_({i.patient_id for i in items}))).all()
        )
        if items
        else {},
    }


def initials(name: str) -> str:
    return "".join(f"{part[0].upper()}." for part in name.split() if part[:1].isalpha()) or "?"


def _status(item: Appointment | Hold, now: datetime) -> str:
    if isinstance(item, Hold):
        return "TENTATIVE" if item.live(now) else "CANCELLED"
    return "CANCELLED" if item.status == "cancelled" else "CONFIRMED"


def _event(item: Appointment | Hold, names: dict[str, dict[str, Any]], now: datetime) -> Event:
    clinic = names["clinic"][item.clinic_id]
    zone = ZoneInfo(clinic.timezone)
    treatment_type = names["type"][item.treatment_type_id]
    who = initials(names["patient"].get(item.patient_id or "", ""))  # a booking page's hold: nobody yet
    suffix = ""
    if isinstance(item, Hold):
        suffix = {
            "follow_up": " (proposed follow-up)",
            "course_plan": " (held, course plan)",
            "waitlist": " (offered from the waitlist)",
        }.get(item.source, " (held)")
    elif item.status == "no_show":
        suffix = " (no-show)"
    event = Event()
    event.add("uid", f"{item.id}@needlebook")
    event.add("sequence", item.version - 1)
    event.add("dtstamp", now)
    event.add("created", item.created_at)
    event.add("last-modified", item.updated_at)
    event.add("dtstart", item.starts_at.astimezone(zone))
    event.add("dtend", item.ends_at.astimezone(zone))
    event.add("summary", f"{treatment_type.name} - {who}{suffix}")
    event.add("location", f"{clinic.name}, {names['room'][item.room_id].name}")
    description = phases(Timing.of(treatment_type), item, zone)
    if item.id in names["rescheduled"]:
        direction, other_id, when = names["rescheduled"][item.id]
        description += f"\nRescheduled {direction} {when:%a %d %b %Y %H:%M}"
        event.add("related-to", f"{other_id}@needlebook", parameters={"RELTYPE": "SIBLING"})
    event.add("description", description)
    event.add("status", _status(item, now))
    event.add("transp", "TRANSPARENT" if _status(item, now) == "CANCELLED" else "OPAQUE")
    event.add("categories", [treatment_type.kind])
    return event


def phases(timing: Timing, item: Appointment | Hold, zone: ZoneInfo) -> str:
    """What happens when, as the clinic plans the visit (times on the clinic's clock)."""

    def hm(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%H:%M")

    at = Instants(item.starts_at, item.procedure_starts_at, item.ends_at)
    needling_end = procedure_end(timing, at)
    lines = []
    if at.procedure_starts_at > at.starts_at:
        lines.append(
            f"Numbing: {hm(at.starts_at)}-{hm(at.procedure_starts_at)} "
            f"(cream applied {hm(at.starts_at)}-{hm(prep_end(timing, at))}; the practitioner is free after)"
        )
        lines.append(f"Needling: {hm(at.procedure_starts_at)}-{hm(needling_end)}")
    else:
        lines.append(f"{timing.kind.capitalize()}: {hm(at.starts_at)}-{hm(needling_end)}")
    if at.ends_at > needling_end:
        lines.append(f"Serum and aftercare: {hm(needling_end)}-{hm(at.ends_at)}")
    if timing.turnover_minutes:
        lines.append(f"Room turnover until {hm(item.ends_at + timedelta(minutes=timing.turnover_minutes))}")
    return "\n".join(lines)


def revoke_feed(db: Session, org: str, feed_id: str, expected_version: int | None) -> None:
    """Its URL is a 404 from now on, and so is the feed for the API (revoking again too)."""
    feed = load_for_change(db, org, CalendarFeed, feed_id, expected_version, what="calendar feed")
    feed.revoked_at = clock.now()
    db.flush()
