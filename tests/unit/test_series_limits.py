"""The bucket bound of ``bucketize`` (exactly MAX_BUCKETS, no more) and the hint its
error gives: a granularity that would work, or a shorter window when none would."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from balances.domain.series import DOWNSAMPLE_LEVELS, MAX_BUCKETS, bucketize
from balances.domain.time import Granularity
from balances.errors import InvalidGranularityError, InvalidPeriodError

FEW = settings(max_examples=25, deadline=None)
concrete = st.sampled_from(DOWNSAMPLE_LEVELS)
starts = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


def after_buckets(granularity: Granularity, start: datetime, count: int) -> datetime:
    """The start of the bucket ``count`` buckets after the one holding ``start``."""
    moment = granularity.floor(start)
    for _ in range(count):
        moment = granularity.next_start(moment)
    return moment


def suggestion(error: InvalidPeriodError) -> Granularity | None:
    found = re.search(r"such as '([a-z0-9]+)'", str(error))
    return None if found is None else Granularity.parse(found.group(1))


@FEW
@given(concrete, starts, st.integers(-2, 2), st.booleans())
def test_a_window_may_span_exactly_max_buckets_and_not_one_more(
    granularity: Granularity, start: datetime, offset: int, partial: bool
) -> None:
    """``count`` whole buckets from the aligned start, and with ``partial`` a sliver of
    one more: allowed up to MAX_BUCKETS buckets, an error beyond."""
    count = MAX_BUCKETS + offset
    end = after_buckets(granularity, start, count)
    if partial:
        end += timedelta(seconds=1)
        count += 1
    if count <= MAX_BUCKETS:
        buckets = bucketize([], start, end, granularity)
        assert len(buckets) == count
        assert buckets[-1].end == end
    else:
        with pytest.raises(InvalidPeriodError, match=str(MAX_BUCKETS)):
            bucketize([], start, end, granularity)


@FEW
@given(
    st.sampled_from(DOWNSAMPLE_LEVELS[:-1]),
    st.datetimes(datetime(1, 1, 1), datetime(3000, 1, 1), timezones=st.just(UTC)),
    st.floats(1.05, 500.0),
)
def test_the_hint_names_a_coarser_granularity_that_works_or_a_shorter_window(
    granularity: Granularity, start: datetime, factor: float
) -> None:
    latest = datetime(9999, 1, 1, tzinfo=UTC)
    bound = granularity.step * MAX_BUCKETS
    end = start + max(min(bound * factor, latest - start), bound + granularity.step)
    with pytest.raises(InvalidPeriodError) as caught:
        bucketize([], start, end, granularity)
    message = str(caught.value)
    assert f"{granularity.value!r}" in message
    assert start.isoformat() in message
    assert end.isoformat() in message
    hinted = suggestion(caught.value)
    event(f"suggested {hinted}")
    if hinted is None:
        assert message.endswith("use a shorter window")
        with pytest.raises(InvalidPeriodError):  # not even months fit
            bucketize([], start, end, Granularity.MONTH)
    else:
        assert DOWNSAMPLE_LEVELS.index(hinted) > DOWNSAMPLE_LEVELS.index(granularity)
        assert hinted is Granularity.AUTO.resolve(start, end)
        assert 0 < len(bucketize([], start, end, hinted)) <= MAX_BUCKETS


def test_the_hint_suggests_months_only_while_months_fit() -> None:
    start = datetime(1000, 1, 1, tzinfo=UTC)
    fits = after_buckets(Granularity.MONTH, start, MAX_BUCKETS)
    with pytest.raises(InvalidPeriodError) as caught:
        bucketize([], start, fits, Granularity.WEEK)
    assert suggestion(caught.value) is Granularity.MONTH
    assert len(bucketize([], start, fits, Granularity.MONTH)) == MAX_BUCKETS
    too_long = fits + timedelta(days=1)  # one more month bucket begins
    with pytest.raises(InvalidPeriodError) as caught:
        bucketize([], start, too_long, Granularity.WEEK)
    assert suggestion(caught.value) is None
    assert str(caught.value).endswith("use a shorter window")


def test_the_hint_for_a_few_years_in_five_minutes_is_the_auto_choice() -> None:
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidPeriodError) as caught:
        bucketize([], start, end, Granularity.FIVE_MINUTES)
    assert suggestion(caught.value) is Granularity.WEEK  # 208 weeks; days would be 1461
    assert "(or 'auto')" in str(caught.value)


def test_a_window_ending_near_the_last_representable_time_stops_at_its_end() -> None:
    """The bucket after December 9999 cannot be represented: the window's end closes
    the last bucket instead."""
    start = datetime(9999, 12, 15, tzinfo=UTC)
    end = datetime(9999, 12, 31, 23, tzinfo=UTC)
    buckets = bucketize([], start, end, Granularity.MONTH)
    assert [(b.start, b.end) for b in buckets] == [(datetime(9999, 12, 1, tzinfo=UTC), end)]


def test_auto_and_a_reversed_window_are_refused_with_what_to_do() -> None:
    start, end = datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidGranularityError) as auto:
        bucketize([], end, start, Granularity.AUTO)
    assert str(auto.value) == (
        "bucketize needs a concrete granularity; resolve auto against the window "
        "first (Granularity.AUTO.resolve(start, end))"
    )
    with pytest.raises(InvalidPeriodError) as reversed_window:
        bucketize([], start, end, Granularity.DAY)
    assert str(reversed_window.value) == (
        "window start 2024-01-02T00:00:00+00:00 is after its end 2024-01-01T00:00:00+00:00"
    )
