"""What a booking occupies, and when (rules 3 and 4).

A microneedling appointment has three instants: the patient arrives and the
numbing cream goes on (`starts_at`), the needling starts (`procedure_starts_at`)
and the patient leaves (`ends_at`). The practitioner is busy only while applying
the cream and from the needling on; while the cream works they are free, which
is what lets one practitioner treat two patients in two rooms at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from booking.domain.claims import claim_key
from booking.domain.errors import InvalidInput, NumbingLeadTooShort
from booking.domain.rules import SESSION_KIND

MAX_NUMBING_MINUTES = 60  # rule 3: the longest numbing a treatment type may ask for


@dataclass(frozen=True)
class Timing:
    kind: str
    numbing_minutes: int
    prep_minutes: int
    procedure_minutes: int
    aftercare_minutes: int
    turnover_minutes: int

    @classmethod
    def of(cls, treatment_type: object) -> Timing:
        return cls(*(getattr(treatment_type, f) for f in cls.__dataclass_fields__))


@dataclass(frozen=True)
class Instants:
    starts_at: datetime
    procedure_starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Need:
    """A resource busy over [starts_at, ends_at); `capacity` is set for pooled resources.

    A pooled resource (numbing chairs, devices) is claimed one unit at a time:
    the service picks a free unit `resource#n` for n in 1..capacity.
    """

    resource: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None = None  # None: a single resource; N: a pool of N units


def instants(timing: Timing, starts_at: datetime, procedure_starts_at: datetime | None = None) -> Instants:
    """The three instants; a procedure start before the numbing lead is refused."""
    earliest = starts_at + timedelta(minutes=timing.numbing_minutes)
    if procedure_starts_at is None:
        procedure_starts_at = earliest
    elif procedure_starts_at < earliest:
        raise NumbingLeadTooShort(
            f"The needling may start {timing.numbing_minutes} minutes after arrival at the earliest.",
            earliest_procedure_start=earliest,
        )
    elif timing.numbing_minutes == 0 and procedure_starts_at != starts_at:
        raise InvalidInput({"procedure_starts_at": ["Must equal starts_at: this treatment has no numbing."]})
    elif procedure_starts_at > starts_at + timedelta(minutes=MAX_NUMBING_MINUTES):
        raise InvalidInput({"procedure_starts_at": [f"Must be at most {MAX_NUMBING_MINUTES} minutes after starts_at."]})
    ends_at = procedure_starts_at + timedelta(minutes=timing.procedure_minutes + timing.aftercare_minutes)
    return Instants(starts_at, procedure_starts_at, ends_at)


def prep_end(timing: Timing, at: Instants) -> datetime:
    """When the practitioner has applied the cream and is free until the needling (rule 3)."""
    return min(at.starts_at + timedelta(minutes=timing.prep_minutes), at.procedure_starts_at)


def procedure_end(timing: Timing, at: Instants) -> datetime:
    """When the needling ends and the serum and aftercare begin."""
    return at.procedure_starts_at + timedelta(minutes=timing.procedure_minutes)


def occupancy(
    timing: Timing,
    at: Instants,
    *,
    clinic_id: str,
    practitioner_id: str,
    room_id: str,
    patient_id: str | None,
    numbing_seats: int = 0,
    devices: int | None = None,
) -> list[Need]:
    """Every resource the appointment claims and over which span (the patient too, unless there is
    none yet: a booking page's hold, whose patient registers as it is booked)."""
    turnover_end = at.ends_at + timedelta(minutes=timing.turnover_minutes)
    practitioner = claim_key("practitioner", practitioner_id)
    room = claim_key("room", room_id)
    needs = [Need(claim_key("patient", patient_id), at.starts_at, at.ends_at)] if patient_id is not None else []
    if at.procedure_starts_at > at.starts_at:
        cream_applied = prep_end(timing, at)
        if cream_applied > at.starts_at:
            needs.append(Need(practitioner, at.starts_at, cream_applied))
    needs.append(Need(practitioner, at.procedure_starts_at, at.ends_at))
    if numbing_seats > 0 and at.procedure_starts_at > at.starts_at:
        # The patient numbs in the clinic's numbing area; the room is needed from the needling on.
        needs.append(Need(claim_key("numbing", clinic_id), at.starts_at, at.procedure_starts_at, numbing_seats))
        needs.append(Need(room, at.procedure_starts_at, turnover_end))
    else:
        needs.append(Need(room, at.starts_at, turnover_end))
    if devices is not None and timing.kind == SESSION_KIND:
        needs.append(Need(claim_key("device", clinic_id), at.procedure_starts_at, procedure_end(timing, at), devices))
    return needs


def _longest_claim() -> timedelta:
    from booking.domain.treatments import LIMITS

    longest = max(
        limits["procedure_minutes"][2] + limits["aftercare_minutes"][2] + limits["turnover_minutes"][2]
        for limits in LIMITS.values()
    )
    return timedelta(minutes=MAX_NUMBING_MINUTES + longest)


# The longest a claim can last: arrival to the end of turnover with the needling started as late as
# a booking may start it and every duration at the most its kind allows (7 hours): a claim that
# ends after an instant started less than this before it.
LONGEST_CLAIM = _longest_claim()


@dataclass(frozen=True)
class Phase:
    """One stretch of a visit as the front desk sees it: what happens, where, and whether the
    practitioner is needed (while the cream works they are not: rule 3)."""

    name: str  # arrival, numbing_application, numbing, needling, aftercare, turnover
    starts_at: datetime
    ends_at: datetime
    practitioner_busy: bool
    place: str  # room, numbing_area


def phases(timing: Timing, at: Instants, *, numbing_area: bool = False) -> list[Phase]:
    """The visit's phases in order, from the stored instants and the treatment type's durations.

    Arrival is an instant (`starts_at == ends_at`). A visit without numbing has none of the numbing
    phases; the practitioner applies the cream (`numbing_application`, `prep_minutes`), leaves the
    patient numbing until the needling, then needles and gives the aftercare; the room is turned
    over after the patient leaves. Where the clinic has a numbing area the patient numbs there."""
    numbing_place = "numbing_area" if numbing_area else "room"
    result = [Phase("arrival", at.starts_at, at.starts_at, False, numbing_place)]
    if at.procedure_starts_at > at.starts_at:
        applied = prep_end(timing, at)
        if applied > at.starts_at:
            result.append(Phase("numbing_application", at.starts_at, applied, True, numbing_place))
        if at.procedure_starts_at > applied:
            result.append(Phase("numbing", applied, at.procedure_starts_at, False, numbing_place))
    needled = min(procedure_end(timing, at), at.ends_at)
    name = "needling" if timing.kind == SESSION_KIND else "procedure"
    result.append(Phase(name, at.procedure_starts_at, needled, True, "room"))
    if at.ends_at > needled:
        result.append(Phase("aftercare", needled, at.ends_at, True, "room"))
    if timing.turnover_minutes:
        result.append(
            Phase("turnover", at.ends_at, at.ends_at + timedelta(minutes=timing.turnover_minutes), False, "room")
        )
    return result
