"""Step-function series: normalize, lookups, chart buckets, downsampling (DESIGN.md 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from balances.domain.series import (
    MAX_BUCKETS,
    Bucket,
    bucketize,
    downsample,
    normalize,
    point_at_height,
    value_at,
)
from balances.domain.time import BalancePoint, Granularity
from balances.errors import InvalidGranularityError, InvalidPeriodError

BIG = 2**128 - 1
JAN_1 = datetime(2024, 1, 1, tzinfo=UTC)


def t(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def p(at: datetime, amount: int, height: int | None = None) -> BalancePoint:
    return BalancePoint(at, amount, height)


def values(buckets: list[Bucket]) -> list[int | None]:
    return [bucket.value for bucket in buckets]


# --- normalize ---------------------------------------------------------------


def test_normalize_sorts_out_of_order_input() -> None:
    points = [p(t(2024, 3, 1), 3), p(t(2024, 1, 1), 1), p(t(2024, 2, 1), 2)]
    assert normalize(points) == [p(t(2024, 1, 1), 1), p(t(2024, 2, 1), 2), p(t(2024, 3, 1), 3)]


def test_normalize_drops_exact_duplicates_from_two_replicas() -> None:
    replica = [p(t(2024, 1, 1), 1, 10), p(t(2024, 1, 2), 2, 20)]
    assert normalize([*replica, *reversed(replica)]) == replica


def test_normalize_drops_no_op_points_keeping_the_earliest_of_a_run() -> None:
    points = [p(t(2024, 1, 1), 5), p(t(2024, 1, 2), 5), p(t(2024, 1, 3), 7), p(t(2024, 1, 4), 7)]
    assert normalize(points) == [p(t(2024, 1, 1), 5), p(t(2024, 1, 3), 7)]


def test_normalize_a_change_back_is_not_a_no_op() -> None:
    points = [p(t(2024, 1, 1), 5), p(t(2024, 1, 2), 0), p(t(2024, 1, 3), 5)]
    assert normalize(points) == points


def test_normalize_orders_by_height_within_an_instant_none_first() -> None:
    at = t(2024, 1, 1)
    points = [p(at, 3, 7), p(at, 2, 6), p(at, 1)]
    assert normalize(points) == [p(at, 1), p(at, 2, 6), p(at, 3, 7)]


def test_normalize_conflicting_amounts_in_one_slot_resolve_the_same_in_any_order() -> None:
    at = t(2024, 1, 1)
    one, two = p(at, 1, 5), p(at, BIG, 5)
    assert normalize([one, two]) == normalize([two, one]) == [two]


def test_normalize_empty() -> None:
    assert normalize([]) == []


# --- value_at / point_at_height -----------------------------------------------


SERIES = normalize([p(t(2024, 1, 1), 10, 100), p(t(2024, 2, 1), 20), p(t(2024, 3, 1), BIG, 300)])


def test_a_point_is_in_force_at_its_own_time() -> None:
    assert value_at(SERIES, t(2024, 2, 1)) == 20
    assert value_at(SERIES, t(2024, 2, 1) - timedelta(microseconds=1)) == 10


def test_value_at_before_the_first_point_is_unknown_not_zero() -> None:
    assert value_at(SERIES, t(2023, 12, 31)) is None
    assert value_at([], t(2024, 1, 1)) is None


def test_value_at_after_the_last_point_carries_it_forward() -> None:
    assert value_at(SERIES, t(2030, 1, 1)) == BIG


def test_value_at_accepts_naive_utc() -> None:
    assert value_at(SERIES, datetime(2024, 2, 15)) == 20


def test_point_at_height_skips_points_without_height() -> None:
    assert point_at_height(SERIES, 99) is None
    assert point_at_height(SERIES, 100) == SERIES[0]
    assert point_at_height(SERIES, 299) == SERIES[0]
    assert point_at_height(SERIES, 300) == SERIES[2]
    assert point_at_height([], 5) is None


# --- bucketize ------------------------------------------------------------------


def test_bucket_value_is_the_last_point_strictly_before_the_bucket_end() -> None:
    points = [p(t(2024, 1, 1, 23, 59), 1), p(t(2024, 1, 2), 2)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 3), Granularity.DAY)
    assert [(b.start, b.end) for b in buckets] == [
        (t(2024, 1, 1), t(2024, 1, 2)),
        (t(2024, 1, 2), t(2024, 1, 3)),
    ]
    assert values(buckets) == [1, 2]  # the point at midnight belongs to the next day
    assert [b.changed for b in buckets] == [True, True]


def test_empty_buckets_carry_the_value_forward() -> None:
    points = [p(t(2024, 1, 1, 12), 7)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 5), Granularity.DAY)
    assert values(buckets) == [7, 7, 7, 7]
    assert [b.changed for b in buckets] == [True, False, False, False]


def test_opening_fills_buckets_before_the_first_point() -> None:
    points = [p(t(2024, 1, 3, 6), 9)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 5), Granularity.DAY, opening=4)
    assert values(buckets) == [4, 4, 9, 9]
    assert [b.changed for b in buckets] == [False, False, True, False]


def test_no_points_and_no_opening_is_unknown_everywhere() -> None:
    buckets = bucketize([], t(2024, 1, 1), t(2024, 1, 4), Granularity.DAY)
    assert values(buckets) == [None, None, None]
    assert not any(b.changed for b in buckets)


def test_no_points_with_an_opening_is_flat() -> None:
    buckets = bucketize([], t(2024, 1, 1), t(2024, 1, 4), Granularity.DAY, opening=0)
    assert values(buckets) == [0, 0, 0]


def test_a_first_point_repeating_the_opening_is_not_a_change() -> None:
    points = [p(t(2024, 1, 2, 5), 4)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 4), Granularity.DAY, opening=4)
    assert not any(b.changed for b in buckets)


def test_bucketize_normalizes_out_of_order_duplicate_input() -> None:
    points = [p(t(2024, 1, 3), 3), p(t(2024, 1, 2), 2), p(t(2024, 1, 3), 3), p(t(2024, 1, 2), 2)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 4), Granularity.DAY, opening=1)
    assert values(buckets) == [1, 2, 3]


def test_window_end_clips_the_last_bucket_and_includes_a_change_at_end() -> None:
    now = t(2024, 5, 15, 13, 47)
    points = [p(t(2024, 5, 15, 9), 1), p(now, 2), p(now + timedelta(seconds=1), 3)]
    buckets = bucketize(points, t(2024, 5, 13, 8), now, Granularity.DAY)
    assert buckets[0].start == t(2024, 5, 13)  # aligned, before the window start
    assert buckets[-1] == Bucket(t(2024, 5, 15), now, 2, True)  # not the point after end
    assert len(buckets) == 3


def test_an_aligned_end_makes_no_empty_bucket() -> None:
    buckets = bucketize([], t(2024, 1, 1), t(2024, 2, 1), Granularity.DAY)
    assert len(buckets) == 31
    assert buckets[-1].end == t(2024, 2, 1)


def test_a_change_at_exactly_the_window_start_is_the_opening_not_a_change() -> None:
    points = [p(t(2024, 1, 1), 5)]
    buckets = bucketize(points, t(2024, 1, 1), t(2024, 1, 3), Granularity.DAY)
    assert values(buckets) == [5, 5]
    assert not any(b.changed for b in buckets)


def test_points_before_the_window_set_the_opening_value() -> None:
    points = [p(t(2023, 6, 1), 8), p(t(2024, 1, 2, 12), 9)]
    buckets = bucketize(points, t(2024, 1, 1, 6), t(2024, 1, 3), Granularity.DAY)
    assert values(buckets) == [8, 9]
    assert [b.changed for b in buckets] == [False, True]


def test_a_zero_length_window_is_one_bucket_with_the_value_at_end() -> None:
    now = t(2024, 5, 15, 13)
    buckets = bucketize([p(now, 3)], now, now, Granularity.HOUR)
    assert buckets == [Bucket(now, now, 3, False)]


def test_leap_day_in_day_buckets() -> None:
    points = [p(t(2024, 2, 29, 12), 29)]
    buckets = bucketize(points, t(2024, 2, 28), t(2024, 3, 2), Granularity.DAY, opening=0)
    assert [b.start for b in buckets] == [t(2024, 2, 28), t(2024, 2, 29), t(2024, 3, 1)]
    assert values(buckets) == [0, 29, 29]


def test_month_buckets_across_february_of_a_leap_year() -> None:
    points = [p(t(2024, 2, 29, 23, 59, 59), 2), p(t(2024, 3, 1), 3)]
    buckets = bucketize(points, t(2024, 1, 15), t(2024, 4, 10), Granularity.MONTH, opening=1)
    assert [(b.start, b.end) for b in buckets] == [
        (t(2024, 1, 1), t(2024, 2, 1)),
        (t(2024, 2, 1), t(2024, 3, 1)),
        (t(2024, 3, 1), t(2024, 4, 1)),
        (t(2024, 4, 1), t(2024, 4, 10)),
    ]
    assert values(buckets) == [1, 2, 3, 3]


def test_month_buckets_across_the_year_end() -> None:
    points = [p(t(2023, 12, 31, 23, 59), 12), p(t(2024, 1, 1), 1)]
    buckets = bucketize(points, t(2023, 11, 20), t(2024, 2, 2), Granularity.MONTH)
    assert [b.start for b in buckets] == [
        t(2023, 11, 1),
        t(2023, 12, 1),
        t(2024, 1, 1),
        t(2024, 2, 1),
    ]
    assert values(buckets) == [None, 12, 1, 1]


def test_day_buckets_dec_31_to_jan_1() -> None:
    points = [p(t(2023, 12, 31, 23, 59, 59), 5)]
    buckets = bucketize(points, t(2023, 12, 31), t(2024, 1, 2), Granularity.DAY)
    assert [b.start for b in buckets] == [t(2023, 12, 31), t(2024, 1, 1)]
    assert values(buckets) == [5, 5]


def test_week_buckets_start_monday_across_month_and_year_ends() -> None:
    # 2023-12-25 and 2024-01-01 are Mondays; 2024-01-29 week runs into February.
    buckets = bucketize([], t(2023, 12, 28), t(2024, 2, 2), Granularity.WEEK, opening=1)
    starts = [b.start for b in buckets]
    assert starts[0] == t(2023, 12, 25)
    assert t(2024, 1, 1) in starts
    assert starts[-1] == t(2024, 1, 29)
    assert all(start.weekday() == 0 for start in starts)
    assert buckets[-1].end == t(2024, 2, 2)


def test_five_minute_and_hour_buckets() -> None:
    points = [p(t(2024, 1, 1, 0, 7), 1), p(t(2024, 1, 1, 0, 9), 2)]
    fives = bucketize(points, t(2024, 1, 1), t(2024, 1, 1, 0, 15), Granularity.FIVE_MINUTES)
    assert values(fives) == [None, 2, 2]
    hours = bucketize(points, t(2024, 1, 1), t(2024, 1, 1, 2), Granularity.HOUR)
    assert values(hours) == [2, 2]


def test_auto_must_be_resolved_first() -> None:
    with pytest.raises(InvalidGranularityError, match="resolve"):
        bucketize([], t(2024, 1, 1), t(2024, 2, 1), Granularity.AUTO)


def test_absurd_span_is_rejected_with_a_coarser_suggestion() -> None:
    with pytest.raises(InvalidPeriodError, match="coarser") as caught:
        bucketize([], t(2020, 1, 1), t(2024, 1, 1), Granularity.FIVE_MINUTES)
    assert str(MAX_BUCKETS) in str(caught.value)
    assert "'5m'" in str(caught.value)


def test_absurd_span_even_in_months() -> None:
    with pytest.raises(InvalidPeriodError, match="shorter window"):
        bucketize([], t(1, 1, 1), t(9999, 1, 1), Granularity.MONTH)


def test_exactly_max_buckets_is_allowed() -> None:
    start = t(2024, 1, 1)
    buckets = bucketize([], start, start + MAX_BUCKETS * timedelta(hours=1), Granularity.HOUR)
    assert len(buckets) == MAX_BUCKETS


def test_window_start_after_end_is_rejected() -> None:
    with pytest.raises(InvalidPeriodError):
        bucketize([], t(2024, 2, 1), t(2024, 1, 1), Granularity.DAY)


def test_huge_amounts_survive_bucketing() -> None:
    buckets = bucketize([p(t(2024, 1, 1, 1), BIG)], t(2024, 1, 1), t(2024, 1, 2), Granularity.DAY)
    assert values(buckets) == [BIG]


# --- downsample -------------------------------------------------------------------


def minutes(count: int, start: datetime = JAN_1) -> list[BalancePoint]:
    """One point a minute, amounts 0, 1, 2, ... (so none is a no-op)."""
    return [p(start + timedelta(minutes=i), i, 1000 + i) for i in range(count)]


def test_downsample_within_the_bound_is_unchanged() -> None:
    points = minutes(10)
    assert downsample(points, 10) == points
    assert downsample([], 1) == []


def test_downsample_merges_the_oldest_five_minute_buckets_first() -> None:
    points = minutes(20)  # buckets of 5: 00-04, 05-09, 10-14, 15-19
    result = downsample(points, 16)
    # the first bucket collapses to its last point; everything newer stays exact
    assert result == [points[4], *points[5:]]


def test_downsample_goes_coarser_only_as_far_as_needed() -> None:
    points = minutes(180)  # three hours
    result = downsample(points, 14)
    # all 36 five-minute closes are too many; hours merge oldest first: two are enough
    assert result[:2] == [points[59], points[119]]
    assert result[2:] == [points[i] for i in range(124, 180, 5)]
    assert len(result) == 14
    assert downsample(points, 13) == [points[59], points[119], points[179]]


def test_downsample_keeps_the_newest_point_and_block_height() -> None:
    points = minutes(500)
    for bound in (1, 2, 3, 7, 50):
        result = downsample(points, bound)
        assert len(result) <= bound
        assert result[-1] == points[-1]
        assert result[-1].block_height == points[-1].block_height


def test_downsample_preserves_values_at_kept_points() -> None:
    points = minutes(500)
    result = downsample(points, 7)
    for point in result:
        assert value_at(result, point.at) == value_at(points, point.at)


def test_downsample_keeps_a_months_true_last_point_when_a_week_straddles_it() -> None:
    # Wed 2024-01-31 and Thu 2024-02-01 share a week; the January close must survive.
    points = normalize(
        [p(t(2024, 1, 10), 1), p(t(2024, 1, 31), 2), p(t(2024, 2, 1), 3), p(t(2024, 2, 20), 4)]
    )
    result = downsample(points, 2)
    assert result == [p(t(2024, 1, 31), 2), p(t(2024, 2, 20), 4)]


def test_downsample_beyond_month_buckets_drops_the_oldest_months() -> None:
    points = normalize([p(t(2024, month, 10), month) for month in range(1, 13)])
    result = downsample(points, 3)
    assert result == points[-3:]


def test_downsample_is_idempotent() -> None:
    points = minutes(300)
    once = downsample(points, 12)
    assert downsample(once, 12) == once


def test_downsample_rejects_a_bound_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        downsample(minutes(3), 0)
