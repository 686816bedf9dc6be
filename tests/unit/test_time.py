"""Periods, granularities and UTC bucket alignment (DESIGN.md section 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from balances.domain import AUTO_MAX_POINTS, BalancePoint, Granularity, Period, parse_timestamp
from balances.errors import InvalidAmountError, InvalidGranularityError, InvalidPeriodError

NOW = datetime(2024, 5, 15, 13, 47, 21, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(days=1)),
        ("1d", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("30d", timedelta(days=30)),
        ("90D", timedelta(days=90)),
        ("1y", timedelta(days=365)),
        ("all", None),
    ],
)
def test_named_periods(text: str, length: timedelta | None) -> None:
    assert Period.parse(text).length == length


def test_1d_is_24h_and_the_default_is_30d() -> None:
    assert Period.parse("1d") == Period.parse("24h")
    assert str(Period.parse("1d")) == "24h"
    assert Period.parse(None) == Period.parse("30d")
    assert Period() == Period.parse("30d")


def test_named_window_ends_now() -> None:
    assert Period.parse("7d").window(NOW) == (NOW - timedelta(days=7), NOW)


def test_all_starts_at_the_earliest_point() -> None:
    earliest = datetime(2021, 1, 1, tzinfo=UTC)
    assert Period.parse("all").window(NOW, earliest) == (earliest, NOW)
    assert Period.parse("all").window(NOW) == (NOW, NOW)


def test_explicit_range() -> None:
    period = Period.between("2024-05-01", "2024-05-03T12:00:00Z")
    start, end = period.window(NOW)
    assert start == datetime(2024, 5, 1, tzinfo=UTC)
    assert end == datetime(2024, 5, 3, 12, tzinfo=UTC)
    assert period.length == timedelta(days=2, hours=12)
    assert str(period) == "2024-05-01T00:00:00+00:00/2024-05-03T12:00:00+00:00"


@pytest.mark.parametrize(
    ("start", "end", "fragment"),
    [
        ("2024-05-03", "2024-05-01", "must be before"),
        ("2024-05-01", "2024-05-01", "must be before"),
        ("yesterday", "2024-05-01", "cannot read time 'yesterday'"),
        ("2024-05-01", "", "cannot read time"),
    ],
)
def test_bad_explicit_ranges(start: str, end: str, fragment: str) -> None:
    with pytest.raises(InvalidPeriodError, match=fragment):
        Period.between(start, end)


@pytest.mark.parametrize("text", ["2d", "month", "", "30", "1 y"])
def test_unknown_periods_list_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidPeriodError, match="accepted: 1h, 24h") as caught:
        Period.parse(text)
    assert isinstance(caught.value, ValueError)


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidPeriodError):
        Period("2d")
    with pytest.raises(InvalidPeriodError):
        Period(None, NOW, NOW - timedelta(1))


def test_timestamps_are_utc() -> None:
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_timestamp("1715781600") == datetime(2024, 5, 15, 14, tzinfo=UTC)
    assert parse_timestamp("2024-05-15T16:00:00+02:00") == datetime(2024, 5, 15, 14, tzinfo=UTC)
    assert parse_timestamp(datetime(2024, 5, 15)) == datetime(2024, 5, 15, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert parse_timestamp(datetime(2024, 5, 15, 2, tzinfo=plus_two)).tzinfo is UTC
    with pytest.raises(InvalidPeriodError):
        parse_timestamp(10**20)
    with pytest.raises(InvalidPeriodError):
        parse_timestamp(True)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [
        (Granularity.FIVE_MINUTES, datetime(2024, 5, 15, 13, 45, tzinfo=UTC)),
        (Granularity.HOUR, datetime(2024, 5, 15, 13, tzinfo=UTC)),
        (Granularity.DAY, datetime(2024, 5, 15, tzinfo=UTC)),
        (Granularity.WEEK, datetime(2024, 5, 13, tzinfo=UTC)),  # Monday
        (Granularity.MONTH, datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_buckets_are_utc_aligned(granularity: Granularity, expected: datetime) -> None:
    assert granularity.floor(NOW) == expected
    local = NOW.astimezone(timezone(timedelta(hours=-7)))  # same instant, another zone
    assert granularity.floor(local) == expected


def test_week_starting_on_monday_floors_to_itself() -> None:
    monday = datetime(2024, 5, 13, tzinfo=UTC)
    assert Granularity.WEEK.floor(monday) == monday
    assert Granularity.WEEK.floor(monday - timedelta(microseconds=1)) == datetime(
        2024, 5, 6, tzinfo=UTC
    )


def test_month_buckets_follow_the_calendar() -> None:
    starts = Granularity.MONTH.bucket_starts(
        datetime(2023, 11, 20, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert [(s.year, s.month) for s in starts] == [
        (2023, 11),
        (2023, 12),
        (2024, 1),
        (2024, 2),
        (2024, 3),
    ]


def test_bucket_starts_cover_the_window() -> None:
    start, end = datetime(2024, 5, 15, 10, 7, tzinfo=UTC), datetime(2024, 5, 15, 10, 31, tzinfo=UTC)
    starts = Granularity.FIVE_MINUTES.bucket_starts(start, end)
    assert starts[0] == datetime(2024, 5, 15, 10, 5, tzinfo=UTC)
    assert starts[-1] == datetime(2024, 5, 15, 10, 30, tzinfo=UTC)
    assert len(starts) == 6


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("1h", Granularity.FIVE_MINUTES),
        ("24h", Granularity.FIVE_MINUTES),
        ("7d", Granularity.HOUR),
        ("30d", Granularity.DAY),
        ("90d", Granularity.DAY),
        ("1y", Granularity.DAY),
    ],
)
def test_auto_picks_the_finest_granularity_within_the_point_budget(
    period: str, expected: Granularity
) -> None:
    start, end = Period.parse(period).window(NOW)
    chosen = Granularity.AUTO.resolve(start, end)
    assert chosen is expected
    assert len(chosen.bucket_starts(start, end)) <= AUTO_MAX_POINTS + 1


def test_auto_for_long_histories_uses_weeks_then_months() -> None:
    assert Granularity.AUTO.resolve(NOW - timedelta(days=3 * 365), NOW) is Granularity.WEEK
    assert Granularity.AUTO.resolve(NOW - timedelta(days=10 * 365), NOW) is Granularity.MONTH
    assert Granularity.DAY.resolve(NOW - timedelta(days=3650), NOW) is Granularity.DAY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", Granularity.FIVE_MINUTES),
        ("hour", Granularity.HOUR),
        ("1h", Granularity.HOUR),
        ("Day", Granularity.DAY),
        ("weekly", Granularity.WEEK),
        ("month", Granularity.MONTH),
        ("auto", Granularity.AUTO),
    ],
)
def test_granularity_names(text: str, expected: Granularity) -> None:
    assert Granularity.parse(text) is expected


@pytest.mark.parametrize("text", ["minute", "", "2h", "year"])
def test_unknown_granularity(text: str) -> None:
    with pytest.raises(InvalidGranularityError, match="accepted: 5m, hour, day, week, month, auto"):
        Granularity.parse(text)


def test_auto_has_no_buckets_until_resolved() -> None:
    with pytest.raises(InvalidGranularityError):
        Granularity.AUTO.floor(NOW)
    with pytest.raises(InvalidGranularityError):
        _ = Granularity.AUTO.step


def test_balance_points_order_by_time_and_validate() -> None:
    early = BalancePoint(datetime(2024, 1, 1), 5, block_height=10)
    late = BalancePoint(datetime(2024, 1, 2, tzinfo=UTC), 0)
    assert early.at.tzinfo is UTC
    assert sorted([late, early]) == [early, late]
    with pytest.raises(InvalidAmountError):
        BalancePoint(NOW, -1)
    with pytest.raises(InvalidPeriodError):
        BalancePoint(NOW, 1, block_height=-5)
