"""Time: UTC timestamps, periods, granularities and balance points (DESIGN.md 5).

A balance series is a step function. Buckets are UTC-aligned; weeks start on
Monday; months on the 1st.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from balances.domain.text import any_case, folded, trimmed, whole
from balances.domain.tokens import parse_amount
from balances.errors import InvalidGranularityError, InvalidPeriodError, quoted

#: ``auto`` picks the finest granularity that draws at most this many buckets.
AUTO_MAX_POINTS = 400


def parse_timestamp(value: datetime | int | float | str) -> datetime:
    """A UTC-aware datetime from a datetime, unix seconds, or ISO 8601 text.

    Naive datetimes and ISO text without an offset are taken as UTC.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise InvalidPeriodError(f"not a time: {quoted(value)}")
    elif isinstance(value, int | float):
        moment = _from_unix(value)
    elif isinstance(value, str):
        moment = _from_text(trimmed(value))
    else:
        raise InvalidPeriodError(f"not a time: {quoted(value)}; use ISO 8601 or unix seconds")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


#: The first Stacks 2.0 mainnet block: no balance, price or block is older.
CHAIN_GENESIS = datetime(2021, 1, 14, 17, 28, 24, tzinfo=UTC)
#: Later than any answer can be about (and date arithmetic stays in range).
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_UNIX_SYNTAX = "-?[0-9]+"
# ISO 8601 as datetime.fromisoformat reads it, less its rarer forms (week dates,
# the basic format): a date, then optionally a time and a UTC offset.
_ISO_SYNTAX = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)?"
    "(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)
_UNIX_TEXT = re.compile(_UNIX_SYNTAX)
_ISO_TEXT = re.compile(_ISO_SYNTAX)
#: The text a time is read from: unix seconds or ISO 8601 (the OpenAPI pattern).
TIME_PATTERN = whole(f"{_UNIX_SYNTAX}|{_ISO_SYNTAX}")


def parse_chain_time(value: datetime | int | float | str) -> datetime:
    """:func:`parse_timestamp`, bounded to the chain's lifetime: an input we judge at
    the edge (400 with a message), never an overflow deeper down."""
    moment = parse_timestamp(value)
    if moment < CHAIN_GENESIS:
        raise InvalidPeriodError(
            f"{moment.isoformat()} is before the Stacks chain began "
            f"({CHAIN_GENESIS.isoformat()}): no balance is that old"
        )
    if moment >= LATEST_TIME:
        raise InvalidPeriodError(f"{moment.isoformat()} is beyond {LATEST_TIME.year}")
    return moment


def _from_unix(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise InvalidPeriodError(f"unix time {seconds} is out of range") from error


def _from_text(text: str) -> datetime:
    if _UNIX_TEXT.fullmatch(text):  # ASCII digits only: "²" or "١" is not a time
        return _from_unix(int(text))
    if not text.isascii():
        raise InvalidPeriodError(
            f"cannot read time {quoted(text)}: use ASCII digits (ISO 8601 or unix seconds)"
        )
    unreadable = InvalidPeriodError(
        f"cannot read time {quoted(text)}; use ISO 8601 (2024-05-01T12:00:00Z) or unix seconds"
    )
    if not _ISO_TEXT.fullmatch(text):
        raise unreadable
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise unreadable from error


class Granularity(enum.Enum):
    """The size of a chart bucket. ``AUTO`` is resolved against a period."""

    FIVE_MINUTES = "5m"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    AUTO = "auto"

    @classmethod
    def parse(cls, text: str | Granularity) -> Granularity:
        if isinstance(text, Granularity):
            return text
        found = _GRANULARITY_ALIASES.get(folded(text)) if isinstance(text, str) else None
        if found is None:
            raise InvalidGranularityError(
                f"unknown granularity {quoted(text)}; accepted: 5m, hour, day, week, month, auto"
            )
        return found

    @property
    def step(self) -> timedelta:
        """The nominal bucket length (a month counts as 30 days)."""
        if self is Granularity.AUTO:
            raise InvalidGranularityError("auto has no step until it is resolved")
        return _NOMINAL_STEP[self]

    def floor(self, moment: datetime) -> datetime:
        """Start of the UTC bucket holding ``moment``."""
        moment = parse_timestamp(moment)
        if self is Granularity.FIVE_MINUTES:
            return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)
        if self is Granularity.HOUR:
            return moment.replace(minute=0, second=0, microsecond=0)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Granularity.DAY:
            return day
        if self is Granularity.WEEK:
            return day - timedelta(days=day.weekday())
        if self is Granularity.MONTH:
            return day.replace(day=1)
        raise InvalidGranularityError("auto has no buckets until it is resolved")

    def next_start(self, bucket_start: datetime) -> datetime:
        """Start of the bucket after the one starting at ``bucket_start``."""
        start = self.floor(bucket_start)
        if self is Granularity.MONTH:
            if start.month == 12:
                return start.replace(year=start.year + 1, month=1)
            return start.replace(month=start.month + 1)
        return start + self.step

    def bucket_starts(self, start: datetime, end: datetime) -> list[datetime]:
        """Starts of every bucket that overlaps ``[start, end]``."""
        starts: list[datetime] = []
        current = self.floor(start)
        while current <= end:
            starts.append(current)
            current = self.next_start(current)
        return starts

    def resolve(self, start: datetime, end: datetime) -> Granularity:
        """The concrete granularity: itself, or for AUTO the finest with few enough buckets."""
        if self is not Granularity.AUTO:
            return self
        span = end - start
        for candidate in _CONCRETE:
            if span / candidate.step <= AUTO_MAX_POINTS:
                return candidate
        return Granularity.MONTH


_NOMINAL_STEP = {
    Granularity.FIVE_MINUTES: timedelta(minutes=5),
    Granularity.HOUR: timedelta(hours=1),
    Granularity.DAY: timedelta(days=1),
    Granularity.WEEK: timedelta(weeks=1),
    Granularity.MONTH: timedelta(days=30),
}
_CONCRETE = list(_NOMINAL_STEP)
_GRANULARITY_ALIASES: dict[str, Granularity] = {
    **{g.value: g for g in Granularity},
    "5min": Granularity.FIVE_MINUTES,
    "1h": Granularity.HOUR,
    "hourly": Granularity.HOUR,
    "1d": Granularity.DAY,
    "daily": Granularity.DAY,
    "1w": Granularity.WEEK,
    "weekly": Granularity.WEEK,
    "monthly": Granularity.MONTH,
}

_PERIOD_LENGTHS: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
    "all": None,
}
_PERIOD_ALIASES = {"1d": "24h"}
DEFAULT_PERIOD = "30d"
#: The names Granularity.parse and Period.parse accept (the OpenAPI patterns).
GRANULARITY_PATTERN = whole(any_case(_GRANULARITY_ALIASES))
PERIOD_PATTERN = whole(any_case([*_PERIOD_LENGTHS, *_PERIOD_ALIASES]))


@dataclass(frozen=True, slots=True)
class Period:
    """A named look-back window (``1h, 24h (=1d), 7d, 30d, 90d, 1y, all``) or an
    explicit ``start``/``end`` range."""

    name: str | None = DEFAULT_PERIOD
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.name is None:
            start, end = self._explicit_range()
            if start.tzinfo is None or end.tzinfo is None or start >= end:
                raise InvalidPeriodError("an explicit period needs aware from < to; use between()")
        elif self.name not in _PERIOD_LENGTHS or self.start or self.end:
            raise InvalidPeriodError(f"invalid period {self.name!r}; use Period.parse()")

    @classmethod
    def parse(cls, text: str | Period | None = None) -> Period:
        """A named period; None gives the default (30d)."""
        if isinstance(text, Period):
            return text
        if text is None:
            return cls(DEFAULT_PERIOD)
        name = folded(text) if isinstance(text, str) else ""
        name = _PERIOD_ALIASES.get(name, name)
        if name not in _PERIOD_LENGTHS:
            raise InvalidPeriodError(
                f"unknown period {quoted(text)}; accepted: 1h, 24h (or 1d), 7d, 30d, 90d, 1y, all, "
                "or an explicit from/to range"
            )
        return cls(name)

    @classmethod
    def requested(
        cls,
        name: str | Period | None,
        start: datetime | int | float | str | None,
        end: datetime | int | float | str | None,
    ) -> Period:
        """A named period, or the explicit range when ``start``/``end`` are given (both)."""
        if start is None and end is None:
            return cls.parse(name)
        if start is None or end is None:
            raise InvalidPeriodError("an explicit range needs both from and to")
        return cls.between(start, end)

    @classmethod
    def between(
        cls, start: datetime | int | float | str, end: datetime | int | float | str
    ) -> Period:
        """An explicit range within the chain's lifetime; ``start`` before ``end``."""
        start_at, end_at = parse_chain_time(start), parse_chain_time(end)
        if start_at >= end_at:
            raise InvalidPeriodError(
                f"from ({start_at.isoformat()}) must be before to ({end_at.isoformat()})"
            )
        return cls(None, start_at, end_at)

    @property
    def length(self) -> timedelta | None:
        """The look-back length of a named period (None for ``all``)."""
        if self.name is None:
            start, end = self._explicit_range()
            return end - start
        return _PERIOD_LENGTHS[self.name]

    def _explicit_range(self) -> tuple[datetime, datetime]:
        if self.start is None or self.end is None:
            raise InvalidPeriodError("an explicit period needs both from and to")
        return self.start, self.end

    def window(self, now: datetime, earliest: datetime | None = None) -> tuple[datetime, datetime]:
        """``(start, end)`` of this period as seen at ``now``.

        ``all`` starts at ``earliest`` (the first known point), or ``now`` without one.
        """
        if self.name is None:
            return self._explicit_range()
        now = parse_timestamp(now)
        length = _PERIOD_LENGTHS[self.name]
        if length is None:
            return min(parse_timestamp(earliest or now), now), now
        return now - length, now

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        start, end = self._explicit_range()
        return f"{start.isoformat()}/{end.isoformat()}"


@dataclass(frozen=True, slots=True, order=True)
class BalancePoint:
    """A change point: from ``at`` on, the balance is ``amount`` (until the next point)."""

    at: datetime
    amount: int
    block_height: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_timestamp(self.at))
        parse_amount(self.amount)
        if self.block_height is not None and self.block_height < 0:
            raise InvalidPeriodError(f"block height must be >= 0, got {self.block_height}")
