"""What one run drives: a real layout over the grouped meter, on simulated time.

The layout is built by :func:`balances.stores.layouts.open_layout` from a
:class:`~balances.config.BalanceServiceConfig`, as the service builds it, so the
run uses production settings (5-minute rechecks and polls, 1,000 points per
series-month, 365 days of retention) except the shard count, which scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from balances.blobs import MemoryBlobStore, MeteredBlobStore
from balances.config import BalanceServiceConfig
from balances.costmodel.meter import GroupedMeter, ScaleRule
from balances.costmodel.results import PHASES
from balances.costmodel.workload import Plan
from balances.stores.feed import ChangeFeed, FeedSettings
from balances.stores.layout import BalanceLayout
from balances.stores.layouts import open_layout
from balances.stores.sharded.parts import DEFAULT_PREFIX
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.store import PREFIX as SPEC_PREFIX

LayoutName = Literal["sharded", "spec"]
#: The scheduler's lease and task record: one leader's, the same for any fleet size.
SCHEDULER = "scheduler"
SCHEDULER_PREFIX = "scheduler"
ONE_LEADER = ScaleRule(1.0, 1.0)
LAYOUTS: tuple[LayoutName, ...] = ("sharded", "spec")
#: The change feed's segments and head (the sharded layout only).
FEED = "feed"


class SimClock:
    """The run's wall clock and monotonic clock: both move only when told to, forward."""

    def __init__(self, now: float) -> None:
        self.now = now

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        if now < self.now:
            raise ValueError(f"simulated time runs forward: {now} < {self.now}")
        self.now = now

    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


@dataclass(slots=True)
class Rig:
    name: LayoutName
    plan: Plan
    clock: SimClock
    meter: GroupedMeter
    layout: BalanceLayout

    def fresh_layout(self) -> BalanceLayout:
        """Another layout object over the same blobs: a process that just started."""
        config = config_for(self.name, self.plan)
        return open_layout(config, self.meter, self.clock.monotonic, self.clock.wall)


def config_for(name: LayoutName, plan: Plan) -> BalanceServiceConfig:
    w = plan.workload
    return BalanceServiceConfig(
        layout=name,
        shards=plan.shards,
        retention_days=w.retention_days,
        max_points_per_month=w.max_points_per_month,
    )


def groups_of(name: LayoutName) -> tuple[dict[str, str], str]:
    """Key prefixes of each metered group, and the group of every other key."""
    scheduler = {f"{SCHEDULER_PREFIX}/": SCHEDULER}
    if name == "sharded":
        return {
            f"{DEFAULT_PREFIX}/journal/": "journal",
            f"{DEFAULT_PREFIX}/manifest": "manifest",
            f"{DEFAULT_PREFIX}/feed/": FEED,
            **scheduler,
        }, ("shards")
    return {
        f"{SPEC_PREFIX}/snapshots/": "snapshots",
        f"{SPEC_PREFIX}/series/": "series",
        **scheduler,
    }, "current"


async def start_feed(rig: Rig) -> None:
    """Write the change feed beside the journal, as the service does (sharded only)."""
    layout = rig.layout
    if isinstance(layout, ShardedStore):
        w = rig.plan.workload
        settings = FeedSettings(
            retention_seconds=w.feed_retention_hours * 3600.0, write_seconds=w.feed_write_seconds
        )
        feed = ChangeFeed(
            rig.meter,
            DEFAULT_PREFIX,
            settings,
            wall_clock=rig.clock.wall,
        )
        layout.feed = feed
        await feed.open()


def open_rig(name: LayoutName, plan: Plan, start: float) -> Rig:
    clock = SimClock(start)
    groups, default = groups_of(name)
    meter = GroupedMeter(MeteredBlobStore(MemoryBlobStore()), groups, default, PHASES)
    layout = open_layout(config_for(name, plan), meter, clock.monotonic, clock.wall)
    return Rig(name, plan, clock, meter, layout)


def scale_rules(rig: Rig, segments_written: int, feed_segments: int = 0) -> dict[str, ScaleRule]:
    """How each group's counts reach fleet size (see :mod:`balances.costmodel.meter`)."""
    factor = rig.plan.factor
    per_address = ScaleRule(factor, factor)
    if rig.name == "spec":
        # its one listing (maintain's, of the current blobs) pages by 1,000 addresses
        pages = math.ceil(rig.plan.workload.addresses / 1000) / math.ceil(rig.plan.addresses / 1000)
        rules = dict.fromkeys(rig.meter.stored(), ScaleRule(factor, factor, {"list": pages}))
        return {**rules, SCHEDULER: ONE_LEADER}
    per_segment = rig.plan.production_segments / max(1, segments_written)
    journal = ScaleRule(per_segment, factor, {"list": 1.0, "head": 1.0})
    return {
        "journal": journal,
        # One feed segment per journal segment (its bytes: the changes); the head
        # and retention's listings are one writer's, whatever the fleet.
        FEED: ScaleRule(
            rig.plan.production_feed_segments / max(1, feed_segments),
            factor,
            {"list": 1.0, "head": 1.0, "get": 1.0},
        ),
        "manifest": ScaleRule(1.0, 1.0),
        "shards": per_address,
        SCHEDULER: ONE_LEADER,
    }
