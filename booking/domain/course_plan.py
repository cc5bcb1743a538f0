"""Course plans (issue 17): the remaining sessions of a course, each inside the recommended window
after the one before it (rule 5, in calendar days), every other rule checked as if the sessions
before it were booked.

A pure search over candidate slots. The planner backtracks, so a full plan is found whenever one
exists among the candidates (tests/domain/test_course_plan.py proves it against brute force);
preferences only decide which one: the same practitioner as the first session where possible,
then the nearest local time of day to the first, then the order asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from booking.domain.errors import DomainError


@dataclass(frozen=True)
class Candidate:
    """A free slot: its local date (an ordinal, in its clinic's zone), start, practitioner and
    local minute of the day. `slot` is what the caller books; the planner never reads it."""

    day: int
    starts_at: Any  # an aware datetime (anything ordered will do for the planner)
    practitioner_id: str
    minute: int
    slot: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class Spacing:
    """Rule 5's days: a later session on the min_days-th to the max_days-th local date after the
    one before it; the first anywhere from first_day to last_day (both included)."""

    min_days: int
    max_days: int
    first_day: int
    last_day: int


# The other rules for a candidate, given the sessions planned before it: the refusal, or None. It must
# depend on the planned sessions through their dates only (rules 1, 5 and 6 do), which lets the
# planner remember a dead end by the dates that led to it.
Check = Callable[[tuple[Candidate, ...], Candidate], DomainError | None]


@dataclass(frozen=True)
class Outcome:
    placed: tuple[Candidate, ...]  # the longest plan found: a prefix of the sessions asked for
    refusal: DomainError | None  # why the next session fits no candidate of its window (None: none free)
    window: tuple[int, int] | None  # that session's window of local dates (None when all are placed)


def window(spacing: Spacing, placed: Sequence[Candidate]) -> tuple[int, int]:
    if not placed:
        return spacing.first_day, spacing.last_day
    return placed[-1].day + spacing.min_days, placed[-1].day + spacing.max_days


def plan(
    candidates: Sequence[Candidate], count: int, spacing: Spacing, check: Check, order: str = "earliest"
) -> Outcome:
    """The first full plan in order of preference, or, when none exists, the longest one found."""
    by_day = sorted(candidates, key=lambda c: (c.day, c.starts_at))
    dead: dict[tuple[int, ...], tuple[Candidate, ...]] = {}  # dates planned -> best extension, no full one

    def extend(placed: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
        if len(placed) == count:
            return ()
        key = tuple(c.day for c in placed)
        if key in dead:
            return dead[key]
        best: tuple[Candidate, ...] = ()
        for candidate in _ranked(_in_window(by_day, window(spacing, placed)), placed, order):
            if check(placed, candidate) is not None:
                continue
            rest = (candidate, *extend((*placed, candidate)))
            if len(placed) + len(rest) == count:
                return rest
            if len(rest) > len(best):
                best = rest
        dead[key] = best
        return best

    placed = extend(())
    if len(placed) == count:
        return Outcome(placed, None, None)
    bounds = window(spacing, placed)
    refusal = None
    for candidate in _in_window(by_day, bounds):  # each is refused, or the plan would be longer
        refusal = check(placed, candidate)
        if refusal is not None:
            break
    return Outcome(placed, refusal, bounds)


def _in_window(by_day: Sequence[Candidate], bounds: tuple[int, int]) -> list[Candidate]:
    low, high = bounds
    return [c for c in by_day if low <= c.day <= high]


def _ranked(found: list[Candidate], placed: tuple[Candidate, ...], order: str) -> list[Candidate]:
    if not placed:
        if order == "evening":  # rule 9: latest in the day first, then the earliest date
            return sorted(found, key=lambda c: (-c.minute, c.starts_at))
        return found
    first = placed[0]
    return sorted(
        found,
        key=lambda c: (
            c.practitioner_id != first.practitioner_id,
            abs(c.minute - first.minute),
            -c.minute if order == "evening" else 0,
            c.starts_at,
        ),
    )
