"""What the background scheduler runs, how often, and how replicas share it.

:data:`DEFAULT_SCHEDULER_CONFIG` mirrors the original service's default scheduler
configuration: balances every 5 minutes (the freshness the cost target is set at),
USD prices hourly, and daily the storage maintenance (compaction of the journal,
daily rollups, retention). Precomputed portfolio aggregates are opt-in: name their
periods in ``aggregate_periods``. Each aggregate is one billed write per tracked
address and period and run — for 10,000 addresses, two periods, hourly, 14.4
million writes ($72) a month at Vercel Blob's prices — while the sharded layout
reads a one-year portfolio in 2 GETs. They pay off for a small set of addresses
or on the spec layout (365 GETs per one-year chart). Change one task with
:func:`dataclasses.replace`::

    config = replace(DEFAULT_SCHEDULER_CONFIG, sync=TaskConfig(60.0))
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from balances.config import SchedulerSettings
from balances.domain import Period
from balances.errors import BalancesError, ConfigError

TaskName = Literal["sync", "prices", "maintain", "aggregates"]
#: The order tasks run in within one pass: fresh balances first, then what builds
#: on them (prices and aggregates), maintenance whenever it is due.
TASK_NAMES: tuple[TaskName, ...] = ("sync", "prices", "maintain", "aggregates")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0 seconds, got {value}")


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """One task's schedule (see :func:`balances.scheduler.timing.next_run`).

    ``interval``: seconds between starts. ``initial_delay``: seconds after the
    scheduler starts before a task that never ran runs. ``align``: run on the UTC
    grid of this many seconds (3600: whole hours). ``backoff``: the first retry
    after a failure, doubling per consecutive failure up to ``max_backoff``
    (default: the interval).
    """

    interval: float
    enabled: bool = True
    initial_delay: float = 0.0
    align: float | None = None
    backoff: float = 30.0
    max_backoff: float | None = None

    def __post_init__(self) -> None:
        _positive("interval", self.interval)
        _positive("backoff", self.backoff)
        if self.initial_delay < 0:
            raise ConfigError(f"initial_delay must be >= 0 seconds, got {self.initial_delay}")
        if self.align is not None:
            _positive("align", self.align)
        if self.max_backoff is not None:
            _positive("max_backoff", self.max_backoff)

    def as_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Every task's schedule, and how a sync pass and the leader lease behave.

    ``segment_addresses``: addresses per ``Syncer.refresh_many`` call, which writes one
    journal segment: a whole pass (up to this many) is one billed write however many
    addresses changed; the chain is read ``sync_concurrency`` at a time meanwhile
    (None: the service's setting). ``rate_limit_share``:
    the part of the chain client's rate limit one sync pass plans for, over one sync
    interval; the rest is left for reads on demand. ``aggregate_periods``: the
    portfolio periods precomputed for every tracked address (none by default; the
    aggregates task runs only when there are some: see the module docstring). ``lease_seconds``: how
    long a leader's lease lasts (a dead leader is replaced within it; each renewal is a
    billed write, so 10 minutes: 8,640 writes a month); it renews after
    ``renew_fraction`` of it. ``jitter``:
    each task's fixed phase is drawn from ``[0, jitter)`` seconds.
    """

    sync: TaskConfig = TaskConfig(300.0)
    prices: TaskConfig = TaskConfig(3600.0)
    # Daily: compaction downloads and rewrites every shard it touches, so its cost
    # grows with how often it runs, not with how much changed (docs/storage.md).
    maintain: TaskConfig = TaskConfig(86400.0, align=86400.0)
    aggregates: TaskConfig = TaskConfig(3600.0)
    aggregate_periods: tuple[str, ...] = ()
    sync_concurrency: int | None = None
    segment_addresses: int = 5000
    rate_limit_share: float = 0.8
    lease_seconds: float = 600.0
    renew_fraction: float = 0.5
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.sync_concurrency is not None and self.sync_concurrency < 1:
            raise ConfigError(f"sync_concurrency must be >= 1, got {self.sync_concurrency}")
        if self.segment_addresses < 1:
            raise ConfigError(f"segment_addresses must be >= 1, got {self.segment_addresses}")
        if not 0 < self.rate_limit_share <= 1:
            raise ConfigError(f"rate_limit_share must be in (0, 1], got {self.rate_limit_share}")
        _positive("lease_seconds", self.lease_seconds)
        if not 0 < self.renew_fraction < 1:
            raise ConfigError(f"renew_fraction must be in (0, 1), got {self.renew_fraction}")
        if self.jitter < 0:
            raise ConfigError(f"jitter must be >= 0 seconds, got {self.jitter}")
        for period in self.aggregate_periods:
            try:
                Period.parse(period)
            except BalancesError as error:
                raise ConfigError(f"aggregate_periods: {error}") from error

    def task(self, name: TaskName) -> TaskConfig:
        found: TaskConfig = getattr(self, name)
        return found

    def runs(self, name: TaskName) -> bool:
        """Whether the task is scheduled: enabled, and for aggregates, with periods."""
        return self.task(name).enabled and (name != "aggregates" or bool(self.aggregate_periods))

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for ``balances scheduler status`` and logs)."""
        plain: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            plain[field.name] = value.as_dict() if isinstance(value, TaskConfig) else value
        plain["aggregate_periods"] = list(self.aggregate_periods)
        return plain


DEFAULT_SCHEDULER_CONFIG = SchedulerConfig()


def scheduler_config(settings: SchedulerSettings) -> SchedulerConfig:
    """The scheduler configuration that ``BALANCES_SCHEDULER__*`` settings describe."""
    base = DEFAULT_SCHEDULER_CONFIG
    return replace(
        base,
        sync=replace(base.sync, interval=settings.sync_interval),
        maintain=replace(
            base.maintain,
            interval=settings.maintain_interval,
            align=settings.maintain_interval,  # whole hours by default, its own grid else
        ),
        prices=replace(base.prices, interval=settings.prices_interval),
        aggregates=replace(base.aggregates, interval=settings.aggregates_interval),
        aggregate_periods=tuple(settings.aggregate_periods),
        lease_seconds=settings.lease_seconds,
    )
