"""Choosing a storage layout from the settings (docs/storage.md compares them)."""

from __future__ import annotations

from collections.abc import Callable

from balances.blobs import BlobStore
from balances.config import BalanceServiceConfig
from balances.stores.layout import BalanceLayout
from balances.stores.sharded.parts import LsmSettings
from balances.stores.sharded.store import ShardedStore
from balances.stores.spec.store import SpecLayoutStore


def lsm_settings(config: BalanceServiceConfig) -> LsmSettings:
    return LsmSettings(
        shards=config.shards,
        recheck_seconds=config.cache_timeouts.current,
        poll_seconds=config.cache_timeouts.current,
        max_points_per_month=config.max_points_per_month,
        retention_days=config.retention_days,
    )


def open_layout(
    config: BalanceServiceConfig,
    blobs: BlobStore,
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
) -> BalanceLayout:
    """``sharded`` (the default, cost-optimised) or ``spec`` (the original service's)."""
    if config.layout == "spec":
        return SpecLayoutStore(
            blobs,
            max_points_per_month=config.max_points_per_month,
            retention_days=config.retention_days,
            wall_clock=wall_clock,
        )
    return ShardedStore(blobs, lsm_settings(config), clock=clock, wall_clock=wall_clock)
