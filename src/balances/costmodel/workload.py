"""The reference workload, the targets, and what one scaled-down run simulates.

The spec claims "10k addresses x 100 tokens: ~$1.15/month" for one write per
address per day. :class:`Workload` is that fleet at the freshness we promise
(a sync every 5 minutes) with a realistic change rate and read mix; :class:`Plan`
is the slice of it one run simulates (``addresses * scale`` addresses, and for the
sharded layout ``256 * scale`` shards, so that a shard holds as many addresses as
in production and its blobs keep their size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from balances.blobs import VERCEL_BLOB, PriceTable

DAY = 86_400
#: 1/100 of the fleet: 117 addresses in 3 production-sized shards. A sharded run
#: spends its time in the store's own compaction and chart reads (each decodes a
#: shard's year of daily closes), so about 3 minutes on two cores; 1/50 and 1/100
#: agree within 0.5 %.
DEFAULT_SCALE = 1 / 100
QUICK_SCALE = 1 / 200


@dataclass(frozen=True, slots=True)
class Workload:
    """The reference fleet and its traffic for one month (the spec's cost claim)."""

    addresses: int = 10_000
    tokens_per_address: int = 100
    #: Tokens the fleet holds between them; popularity falls off as 1/rank, so the
    #: big tokens are in most wallets (which is what makes shared blobs compress).
    token_universe: int = 2_000
    sync_interval_seconds: int = 300
    #: Block ingestion writes a journal segment of what blocks changed at most this
    #: long after the first change (BALANCES_INGEST__FLUSH_SECONDS); with the pull
    #: source's lag of about one 5-second block, a balance is durable within 60 s.
    ingest_flush_seconds: int = 50
    changes_per_address_per_day: float = 2.0
    #: The change feed's retention (BALANCES_FEED__RETENTION_HOURS): a week of
    #: segments is stored, older ones deleted.
    feed_retention_hours: float = 168.0
    #: Seconds between durable feed segments at least (BALANCES_FEED__WRITE_SECONDS).
    feed_write_seconds: float = 0.0
    retention_days: int = 365
    #: History written before the measured month, so it runs at steady state.
    prepopulated_months: int = 11
    balance_reads_per_month: int = 100_000
    history_reads_per_month: int = 20_000
    history_window_days: int = 30
    portfolio_reads_per_month: int = 5_000
    portfolio_window_days: int = 365
    month_days: int = 30
    production_shards: int = 256
    max_points_per_month: int = 1000
    #: Addresses per ``apply_many`` call (None: a cycle's updates in one call, as the
    #: brief of the cost model has it; the scheduler batches ``sync_concurrency``).
    apply_batch: int | None = None
    #: Hours between ``maintain()`` passes (24: daily, as the scheduler runs it).
    maintain_interval_hours: int = 24
    #: The measured month: April 2025 has 30 days, so it is a calendar month too.
    month_start: datetime = datetime(2025, 4, 1, tzinfo=UTC)
    prices: PriceTable = VERCEL_BLOB

    def on_ingestion(self) -> Workload:
        """This workload as block ingestion writes it: a cycle per flush, holding the
        changes the blocks brought (an unchanged address costs nothing)."""
        return replace(self, sync_interval_seconds=self.ingest_flush_seconds)

    @property
    def cycles(self) -> int:
        """Sync cycles in the measured month (8,640 at 5 minutes)."""
        return self.month_days * DAY // self.sync_interval_seconds

    @property
    def cycles_per_day(self) -> int:
        return DAY // self.sync_interval_seconds

    @property
    def month_end(self) -> datetime:
        return self.month_start + timedelta(days=self.month_days)

    @property
    def cycles_per_maintain(self) -> int:
        return self.maintain_interval_hours * 3_600 // self.sync_interval_seconds


@dataclass(frozen=True, slots=True)
class Targets:
    """What the sharded layout must achieve (DESIGN.md section 4)."""

    monthly_dollars: float = 1.15
    ratio_to_spec: float = 0.2
    daily_year_gets: int = 2
    hourly_30d_gets: int = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """One run's slice of ``workload``: how many addresses and shards it simulates."""

    workload: Workload
    scale: float
    addresses: int
    shards: int

    @classmethod
    def of(cls, workload: Workload, scale: float) -> Plan:
        """``production_shards * scale`` shards (at least one) and as many addresses as
        fill them like production's (``addresses * scale``, rounded to whole shards:
        508 rather than 500 at 1/20), so one factor scales shards and addresses alike."""
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        shards = max(1, round(workload.production_shards * scale))
        per_shard = workload.addresses / workload.production_shards
        return cls(workload, scale, max(1, round(shards * per_shard)), shards)

    @property
    def factor(self) -> float:
        """What one simulated address stands for: production addresses per simulated one."""
        return self.workload.addresses / self.addresses

    def per_run(self, per_month: int) -> int:
        """A fleet-wide monthly count (reads), for this run's addresses."""
        return max(1, round(per_month / self.factor))

    def changes_per_cycle(self, addresses: int) -> float:
        w = self.workload
        return addresses * w.changes_per_address_per_day * w.sync_interval_seconds / DAY

    @property
    def production_feed_segments(self) -> float:
        """Feed segments production writes a month: one per journal segment, or at
        most one per ``feed_write_seconds``."""
        every = self.workload.feed_write_seconds
        if every <= 0:
            return self.production_segments
        return min(self.production_segments, self.workload.month_days * 86_400 / every)

    @property
    def production_segments(self) -> float:
        """Journal segments production writes a month: one per ``apply_many`` call with
        any change. In one call per cycle, changes arrive at ~69 a cycle: a segment
        practically every cycle."""
        w = self.workload
        batch = w.apply_batch or w.addresses
        calls = math.ceil(w.addresses / batch)
        rate = self.changes_per_cycle(batch)
        return w.cycles * calls * (1 - math.exp(-rate))
