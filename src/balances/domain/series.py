"""Balance series as step functions: ordering, lookup, chart buckets, bounding (DESIGN.md 5).

A series is a list of change points. From a point's ``at`` on, the balance is its
``amount`` until the next point, so the value at ``t`` is the last point at or
before ``t``. Nothing here samples: a chart bucket shows the value in force at its
end, carried forward through buckets where nothing changed, and bounding a series
merges its oldest points into coarser buckets rather than dropping the newest.

Everything is pure: no I/O, no clocks. Callers pass ``now`` and the points.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from balances.domain.time import BalancePoint, Granularity, parse_timestamp
from balances.errors import InvalidGranularityError, InvalidPeriodError

#: A chart wider than this many buckets is a mistake (a year in 5-minute buckets),
#: not a request to honour: it would cost memory and draw nothing readable.
MAX_BUCKETS = 10_000

#: The granularities :func:`downsample` merges into, finest first.
DOWNSAMPLE_LEVELS: tuple[Granularity, ...] = (
    Granularity.FIVE_MINUTES,
    Granularity.HOUR,
    Granularity.DAY,
    Granularity.WEEK,
    Granularity.MONTH,
)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One chart bucket of a step function over a window ``[start, end)``.

    ``start`` is the UTC-aligned bucket start (weeks start Monday, months on the
    1st), even for the first bucket, whose start may precede the window start: an
    aligned label is what charts and portfolio sums across tokens line up on.
    ``end`` is the next bucket start, clipped to the window end (exclusive).

    ``value`` is the step function at the bucket's end, i.e. the last value in
    force inside the bucket; it is ``None`` only when no point and no opening
    value precede that end (unknown is not zero). ``changed`` says the value moved
    inside the window's part of the bucket, so a chart can tell a carried-forward
    value from a fresh one.
    """

    start: datetime
    end: datetime
    value: int | None
    changed: bool


def _order_key(point: BalancePoint) -> tuple[datetime, bool, int]:
    # Time first; at one instant, a point without a height sorts before one with.
    height = point.block_height
    return point.at, height is not None, 0 if height is None else height


def normalize(points: Iterable[BalancePoint]) -> list[BalancePoint]:
    """The points as a clean step function: ordered, de-duplicated, no no-op steps.

    Out-of-order and duplicate input is normal (two replicas, a backfill racing
    the live sync), so the result does not depend on input order:

    - sorted by ``(at, block_height)``, a point without a height first at its instant;
    - one point per ``(at, block_height)``: exact duplicates collapse, and two
      conflicting amounts for the same slot (which one chain state cannot
      produce) resolve to the larger, so every replica converges on one answer;
    - a point whose amount equals the previous point's is dropped (the function
      does not move there); of a run of equal amounts the earliest is kept, since
      that is when the value came into force.
    """
    best: dict[tuple[datetime, int | None], BalancePoint] = {}
    for point in points:
        slot = (point.at, point.block_height)
        known = best.get(slot)
        if known is None or point.amount > known.amount:
            best[slot] = point
    result: list[BalancePoint] = []
    for point in sorted(best.values(), key=_order_key):
        if not result or result[-1].amount != point.amount:
            result.append(point)
    return result


def value_at(points: Sequence[BalancePoint], at: datetime) -> int | None:
    """The amount in force at ``at``: the last point at or before it, else None.

    ``points`` must be normalized (ordered). A point at exactly ``at`` is in force
    at ``at``. Binary search, because month and rollup series can be long.
    """
    index = bisect_right(points, parse_timestamp(at), key=lambda point: point.at)
    return points[index - 1].amount if index else None


def point_at_height(points: Sequence[BalancePoint], height: int) -> BalancePoint | None:
    """The last point (in series order) whose ``block_height`` is at most ``height``.

    Points without a height cannot be placed on the chain and are skipped. The
    scan runs from the newest end and does not assume heights grow with time, so
    it stays correct when replicas stamped points inconsistently; lookups of
    recent heights stop early.
    """
    for point in reversed(points):
        if point.block_height is not None and point.block_height <= height:
            return point
    return None


def bucketize(
    points: Sequence[BalancePoint],
    start: datetime,
    end: datetime,
    granularity: Granularity,
    *,
    opening: int | None = None,
) -> list[Bucket]:
    """Chart buckets covering the window ``[start, end)`` of a step function.

    ``opening`` is the value in force before the first point given; callers that
    pass only the points inside the window pass the value at the window start.
    Points may be unordered (they are normalized here) and may extend past the
    window either side: points after ``end`` are ignored, earlier ones set values.

    Bucket starts are aligned (the first is ``floor(start)``); only the last end is
    clipped to ``end``. A bucket's value is the last point strictly before its end,
    except the last bucket, which includes ``end`` itself so a change stamped at
    exactly ``end`` (often ``now``) is shown; with no such point, ``opening``.
    ``changed`` counts change points in ``(start, end]``: a point at exactly
    ``start`` is the opening, not a change inside the window, which keeps the
    answer the same whether the caller passes all points or only those inside.

    A window with ``start == end`` gives one bucket holding the value at ``end``.
    Raises InvalidGranularityError for AUTO (resolve it against the window first)
    and InvalidPeriodError for ``start > end`` or more than MAX_BUCKETS buckets.
    """
    start, end = parse_timestamp(start), parse_timestamp(end)
    bounds = _bucket_bounds(start, end, granularity)
    ordered = normalize(points)
    if ordered and opening is not None and ordered[0].amount == opening:
        ordered = ordered[1:]  # a first point that repeats the opening moves nothing
    times = [point.at for point in ordered]
    buckets: list[Bucket] = []
    low = bisect_right(times, start)
    for index, (bucket_start, bucket_end) in enumerate(bounds):
        last = index == len(bounds) - 1
        high = bisect_right(times, end) if last else bisect_left(times, bucket_end)
        value = ordered[high - 1].amount if high else opening
        buckets.append(Bucket(bucket_start, bucket_end, value, high > low))
        low = max(low, high)
    return buckets


def _bucket_bounds(
    start: datetime, end: datetime, granularity: Granularity
) -> list[tuple[datetime, datetime]]:
    """``(aligned start, clipped end)`` of every bucket of ``[start, end)``."""
    if granularity is Granularity.AUTO:
        raise InvalidGranularityError(
            "bucketize needs a concrete granularity; resolve auto against the window "
            "first (Granularity.AUTO.resolve(start, end))"
        )
    if start > end:
        raise InvalidPeriodError(
            f"window start {start.isoformat()} is after its end {end.isoformat()}"
        )
    bounds: list[tuple[datetime, datetime]] = []
    for bound in _bounds(start, end, granularity):
        if len(bounds) == MAX_BUCKETS:
            raise _too_many_buckets(start, end, granularity)
        bounds.append(bound)
    return bounds


def _bounds(
    start: datetime, end: datetime, granularity: Granularity
) -> Iterator[tuple[datetime, datetime]]:
    """Every bucket's bounds, lazily (a window may be absurdly long)."""
    current = granularity.floor(start)
    while True:
        following = _next_start(granularity, current, end)
        yield current, min(following, end)
        if following >= end:
            return
        current = following


def _next_start(granularity: Granularity, current: datetime, end: datetime) -> datetime:
    # Near datetime.max the next bucket start cannot be represented; the window
    # end (which can) is where the bucket stops anyway.
    try:
        return granularity.next_start(current)
    except (OverflowError, ValueError):
        return max(end, current)


def _too_many_buckets(
    start: datetime, end: datetime, granularity: Granularity
) -> InvalidPeriodError:
    """The error, with a hint that works: the granularity ``auto`` picks when that
    one draws few enough buckets (it is then coarser than the one asked for), else
    a shorter window (even months are too many)."""
    coarser = Granularity.AUTO.resolve(start, end)
    if next(islice(_bounds(start, end, coarser), MAX_BUCKETS, None), None) is None:
        hint = f"use a coarser granularity such as {coarser.value!r} (or 'auto')"
    else:
        hint = "use a shorter window"
    return InvalidPeriodError(
        f"{start.isoformat()} to {end.isoformat()} in {granularity.value!r} buckets is more "
        f"than {MAX_BUCKETS} buckets; {hint}"
    )


def downsample(points: Sequence[BalancePoint], max_points: int) -> list[BalancePoint]:
    """At most ``max_points`` points, made by merging the oldest into coarser buckets.

    ``points`` must be normalized. A series within the bound comes back unchanged.
    Otherwise whole buckets are merged oldest first, each keeping its LAST point
    (the value in force at the bucket's end, with that point's own time and block
    height): 5-minute buckets until the bound holds or all are merged, then hour,
    day, week and month buckets the same way. So recent points stay exact and only
    old ones get coarse. Which points survive a merge is decided on the original
    points: a month keeps its true last point even when a week straddles its end.

    What holds: the result is a subsequence of ``points``; the newest point is
    always kept; at every kept point's time the step function equals the
    original's (bucket ends are preserved); a dropped point's change shows up at
    the next kept point, in the same bucket, so changes are late by less than a
    bucket, never lost. If even one point per month exceeds the bound, the oldest
    month points are dropped, keeping the newest ``max_points``: values before
    the first kept point are then unknown. The result is idempotent.

    Raises ValueError for ``max_points < 1`` (a caller bug, not user input).
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    if len(points) <= max_points:
        return list(points)
    keep = [True] * len(points)
    count = len(points)
    for granularity in DOWNSAMPLE_LEVELS:
        count, done = _merge_level(points, granularity, keep, count, max_points)
        if done:
            return [point for point, kept in zip(points, keep, strict=True) if kept]
    survivors = [point for point, kept in zip(points, keep, strict=True) if kept]
    return survivors[-max_points:]


def _merge_level(
    points: Sequence[BalancePoint],
    granularity: Granularity,
    keep: list[bool],
    count: int,
    max_points: int,
) -> tuple[int, bool]:
    """Merge ``granularity`` buckets oldest first into ``keep`` until ``count`` fits.

    Returns the new count and whether it fits. ``keep`` holds the previous level's
    survivors; a merged bucket keeps exactly its last original point.
    """
    floors = [granularity.floor(point.at) for point in points]
    first = 0
    while first < len(points):
        after = first + 1
        while after < len(points) and floors[after] == floors[first]:
            after += 1
        count += 1 - sum(keep[first:after])
        keep[first:after] = [False] * (after - first - 1) + [True]
        if count <= max_points:
            return count, True
        first = after
    return count, False
