"""The course planner is complete: whenever a full plan exists among the candidates it finds one,
and otherwise it places as many sessions as any plan could (brute force on small random cases)."""

from __future__ import annotations

from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from booking.domain.course_plan import Candidate, Spacing, plan, window
from booking.domain.errors import CourseComplete, DomainError, IntervalTooShort

candidates = st.lists(
    st.builds(
        lambda day, minute, who: Candidate(day, day * 1440 + minute, who, minute),
        st.integers(0, 30),
        st.sampled_from([540, 600, 780, 1020]),
        st.sampled_from(["p1", "p2"]),
    ),
    max_size=12,
    unique_by=lambda c: (c.day, c.minute, c.practitioner_id),
)


def make_check(forbidden: frozenset[int], cap: int, cap_days: int, first_by: int):
    """Date-only rules like the real ones: a day refused outright (interval to an existing session),
    at most `cap` sessions in any `cap_days` days (rule 6), the first by `first_by` (rule 1)."""

    def check(placed: tuple[Candidate, ...], c: Candidate) -> DomainError | None:
        if c.day in forbidden:
            return IntervalTooShort("too close")
        if sum(1 for p in placed if c.day - p.day < cap_days) + 1 > cap:
            return CourseComplete("cap")
        if not placed and c.day > first_by:
            return DomainError("consultation")
        return None

    return check


def valid(seq: tuple[Candidate, ...], spacing: Spacing, check) -> bool:
    for i, c in enumerate(seq):
        low, high = window(spacing, seq[:i])
        if not low <= c.day <= high or check(seq[:i], c) is not None:
            return False
    return True


def brute_force_depth(found: list[Candidate], count: int, spacing: Spacing, check) -> int:
    """The most sessions any plan places, trying every sequence of candidates."""
    best = 0
    for k in range(1, count + 1):
        if any(valid(seq, spacing, check) for seq in product(found, repeat=k)):
            best = k
    return best


@settings(max_examples=300, deadline=None)
@given(
    found=candidates,
    count=st.integers(1, 4),
    min_days=st.integers(1, 4),
    extra=st.integers(0, 4),
    first_to=st.integers(0, 10),
    forbidden=st.frozensets(st.integers(0, 30), max_size=6),
    cap=st.integers(1, 3),
    cap_days=st.integers(1, 12),
    first_by=st.integers(0, 30),
    order=st.sampled_from(["earliest", "evening"]),
)
def test_the_planner_finds_a_full_plan_whenever_brute_force_does(
    found, count, min_days, extra, first_to, forbidden, cap, cap_days, first_by, order
):
    spacing = Spacing(min_days, min_days + extra, 0, first_to)
    check = make_check(forbidden, cap, cap_days, first_by)
    outcome = plan(found, count, spacing, check, order)
    assert valid(outcome.placed, spacing, check)
    assert len(outcome.placed) == brute_force_depth(found, count, spacing, check)
    if len(outcome.placed) < count:
        low, high = outcome.window
        refused = [c for c in found if low <= c.day <= high]
        # The next session's reason: the first refusal in its window, or none when nothing was free.
        assert (outcome.refusal is None) == (not refused)


def test_backtracks_past_the_earliest_slot_when_it_leaves_no_room_for_the_next():
    spacing = Spacing(28, 42, 0, 14)
    first_early, first_late = Candidate(0, 0, "p1", 600), Candidate(10, 10, "p1", 600)
    third = Candidate(10 + 28 + 40, 78, "p1", 600)
    second = [Candidate(d, d, "p1", 600) for d in (28, 38)]
    outcome = plan([first_early, first_late, *second, third], 3, spacing, lambda placed, c: None)
    assert [c.day for c in outcome.placed] == [0, 38, 78]


def test_the_same_practitioner_then_the_nearest_time_of_day_to_the_first():
    spacing = Spacing(28, 42, 0, 0)
    first = Candidate(0, 0, "p1", 600)
    others = [Candidate(28, 1, "p2", 600), Candidate(29, 2, "p1", 1020), Candidate(30, 3, "p1", 660)]
    outcome = plan([first, *others], 2, spacing, lambda placed, c: None)
    assert outcome.placed[1] == others[2]


def test_an_unplaceable_session_reports_the_first_refusal_in_its_window():
    spacing = Spacing(28, 42, 0, 0)
    refusal = IntervalTooShort("close", earliest_start=50)

    def check(placed, c):
        return refusal if placed else None

    outcome = plan([Candidate(0, 0, "p1", 600), Candidate(30, 30, "p1", 600)], 2, spacing, check)
    assert [c.day for c in outcome.placed] == [0]
    assert outcome.refusal is refusal and outcome.window == (28, 42)
