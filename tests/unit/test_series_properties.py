"""Properties of the step-function series helpers (DESIGN.md 5), checked with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from balances.domain.series import (
    DOWNSAMPLE_LEVELS,
    bucketize,
    downsample,
    normalize,
    value_at,
)
from balances.domain.time import BalancePoint, Granularity

# Mid-November to mid-April: a month end, a year end and a leap day.
ORIGIN = datetime(2023, 11, 15, tzinfo=UTC)
SPAN_SECONDS = 150 * 24 * 3600
EPSILON = timedelta(microseconds=1)
BOUNDARIES = [
    datetime(2023, 12, 1, tzinfo=UTC),
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 5, tzinfo=UTC),
    datetime(2024, 1, 29, tzinfo=UTC),  # a Monday whose week ends in February
    datetime(2024, 2, 29, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC),
]
#: Longest window per granularity, so bucket counts stay small.
MAX_WINDOW = {
    Granularity.FIVE_MINUTES: timedelta(hours=12),
    Granularity.HOUR: timedelta(days=6),
    Granularity.DAY: timedelta(days=90),
    Granularity.WEEK: timedelta(days=150),
    Granularity.MONTH: timedelta(days=150),
}

moments = st.one_of(
    st.integers(0, SPAN_SECONDS).map(lambda s: ORIGIN + timedelta(seconds=s)),
    st.sampled_from(BOUNDARIES),
    st.tuples(st.sampled_from(BOUNDARIES), st.integers(-600, 600)).map(
        lambda pair: pair[0] + timedelta(seconds=pair[1])
    ),
)
amounts = st.one_of(st.integers(0, 3), st.integers(0, 2**128 - 1), st.just(2**128 - 1))
heights = st.none() | st.integers(0, 50)
points_strategy = st.lists(st.builds(BalancePoint, moments, amounts, heights), max_size=40)
concrete = st.sampled_from(list(MAX_WINDOW))


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime, Granularity]:
    granularity = draw(concrete)
    start = draw(moments)
    length = draw(st.integers(0, int(MAX_WINDOW[granularity].total_seconds())))
    return start, start + timedelta(seconds=length), granularity


def in_window_changes(
    ordered: list[BalancePoint], opening: int | None, low: datetime, high: datetime, last: bool
) -> bool:
    """Reference for ``changed``: a point in the bucket's part of the window whose
    amount differs from the value before it (the opening for the first point)."""
    previous = opening
    for point in ordered:
        inside = low < point.at and (point.at <= high if last else point.at < high)
        if inside and point.amount != previous:
            return True
        previous = point.amount
    return False


# --- normalize ----------------------------------------------------------------------


@settings(deadline=None)
@given(points_strategy)
def test_normalize_is_idempotent_ordered_and_has_no_no_op_steps(
    points: list[BalancePoint],
) -> None:
    ordered = normalize(points)
    assert normalize(ordered) == ordered
    assert all(a.at <= b.at for a, b in pairwise(ordered))
    assert all(a.amount != b.amount for a, b in pairwise(ordered))
    assert set(ordered) <= set(points)


@settings(deadline=None)
@given(points_strategy, st.randoms(use_true_random=False))
def test_normalize_ignores_input_order(points: list[BalancePoint], rng: object) -> None:
    shuffled = list(points)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert normalize(shuffled) == normalize(points)


@settings(deadline=None)
@given(points_strategy, moments)
def test_normalize_keeps_the_step_function_at_distinct_instants(
    points: list[BalancePoint], at: datetime
) -> None:
    # Without same-slot conflicts, normalizing never moves the value at any time.
    distinct = set(points)
    if len({(point.at, point.block_height) for point in distinct}) == len(distinct):
        by_order = sorted(
            distinct, key=lambda q: (q.at, q.block_height is not None, q.block_height)
        )
        assert value_at(normalize(points), at) == value_at(by_order, at)


# --- bucketize ----------------------------------------------------------------------


@settings(deadline=None)
@given(points_strategy, windows(), st.none() | amounts)
def test_buckets_are_ordered_contiguous_aligned_and_clipped(
    points: list[BalancePoint],
    window: tuple[datetime, datetime, Granularity],
    opening: int | None,
) -> None:
    start, end, granularity = window
    buckets = bucketize(points, start, end, granularity, opening=opening)
    assert buckets[0].start == granularity.floor(start)
    assert buckets[-1].end == end
    for bucket in buckets:
        assert granularity.floor(bucket.start) == bucket.start
        assert bucket.start <= bucket.end
    for before, after in pairwise(buckets):
        assert before.end == after.start == granularity.next_start(before.start)
        assert before.start < before.end


@settings(deadline=None)
@given(points_strategy, windows(), st.none() | amounts)
def test_bucket_values_are_the_step_function_at_each_bucket_end(
    points: list[BalancePoint],
    window: tuple[datetime, datetime, Granularity],
    opening: int | None,
) -> None:
    start, end, granularity = window
    ordered = normalize(points)
    buckets = bucketize(points, start, end, granularity, opening=opening)
    for index, bucket in enumerate(buckets):
        last = index == len(buckets) - 1
        found = value_at(ordered, end if last else bucket.end - EPSILON)
        assert bucket.value == (opening if found is None else found)
        low = start if index == 0 else bucket.start - EPSILON
        assert bucket.changed == in_window_changes(ordered, opening, low, bucket.end, last)
    if ordered and ordered[-1].at <= end:
        assert buckets[-1].value == ordered[-1].amount  # the newest point is shown


@settings(deadline=None)
@given(points_strategy, windows())
def test_bucketize_gives_the_same_answer_for_all_points_or_a_window_slice(
    points: list[BalancePoint], window: tuple[datetime, datetime, Granularity]
) -> None:
    # What the stores do: pass the value at the start and only the points inside.
    start, end, granularity = window
    ordered = normalize(points)
    inside = [point for point in ordered if start < point.at <= end]
    sliced = bucketize(inside, start, end, granularity, opening=value_at(ordered, start))
    assert sliced == bucketize(points, start, end, granularity)


# --- downsample ---------------------------------------------------------------------


def same_bucket_somewhere(a: datetime, b: datetime) -> bool:
    return any(level.floor(a) == level.floor(b) for level in DOWNSAMPLE_LEVELS)


def is_month_close(point: BalancePoint, ordered: list[BalancePoint]) -> bool:
    """The point is the last of its month in series order."""
    month = Granularity.MONTH.floor(point.at)
    later = ordered[ordered.index(point) + 1 :]
    return all(Granularity.MONTH.floor(q.at) != month for q in later)


@settings(deadline=None)
@given(points_strategy, st.integers(1, 12))
def test_downsample_bounds_keeps_the_newest_and_is_a_subsequence(
    points: list[BalancePoint], max_points: int
) -> None:
    ordered = normalize(points)
    result = downsample(ordered, max_points)
    assert len(result) <= max_points
    assert downsample(result, max_points) == result
    if len(ordered) <= max_points:
        assert result == ordered
    if ordered:
        assert result[-1] == ordered[-1]
    positions = [ordered.index(point) for point in result]
    assert positions == sorted(set(positions))


@settings(deadline=None)
@given(points_strategy, st.integers(1, 12))
def test_downsample_preserves_the_step_function_at_kept_points_and_delays_changes(
    points: list[BalancePoint], max_points: int
) -> None:
    # Exact at every kept point's time (each is the end of its merged bucket);
    # a dropped change shows up at the next kept point, within one bucket of it,
    # unless the series needed more than one point per month and the oldest
    # month closes were cut, in which case the cut points are all older.
    ordered = normalize(points)
    result = downsample(ordered, max_points)
    for point in result:
        assert value_at(result, point.at) == value_at(ordered, point.at)
    kept = set(result)
    trimmed = len(result) == max_points and all(is_month_close(q, ordered) for q in result)
    for index, point in enumerate(ordered):
        if point in kept:
            continue
        following = next(q for q in ordered[index + 1 :] if q in kept)
        if not same_bucket_somewhere(point.at, following.at):
            assert trimmed
            assert point.at <= result[0].at
