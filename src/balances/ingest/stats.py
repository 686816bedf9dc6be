"""What ingestion has done, for ``/metrics``, ``/health`` and ``balances ingest status``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from balances.stores.sharded.journal import IngestMark


@dataclass(slots=True)
class IngestStats:
    blocks_applied: int = 0
    blocks_skipped: int = 0  # delivered again: already applied
    reorgs: int = 0
    blocks_undone: int = 0
    pairs_applied: int = 0
    pairs_read: int = 0
    reads_failed: int = 0
    flushes: int = 0
    fallbacks: int = 0
    #: Drift found (a delta that would leave u128, or a reconciler difference), by kind.
    drift_found: Counter[str] = field(default_factory=Counter)
    drift_repaired: Counter[str] = field(default_factory=Counter)
    reconciled: int = 0
    #: The chain tip the source last reported (height, block time), for the lag.
    source_tip: tuple[int, float] | None = None
    #: Wall time the last block was applied.
    applied_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class IngestStatus:
    """A snapshot of ingestion, as ``/health`` and the CLI report it."""

    running: bool
    source: str
    cursor: IngestMark | None
    lag_blocks: int | None
    lag_seconds: float | None
    staged: int
    stats: IngestStats

    @classmethod
    def of(
        cls, running: bool, source: str, cursor: IngestMark | None, staged: int, stats: IngestStats
    ) -> IngestStatus:
        """The status at ``cursor``, with its lag behind the tip the source last showed."""
        lag_blocks = lag_seconds = None
        tip = stats.source_tip
        if cursor is not None and tip is not None:
            lag_blocks = max(0, tip[0] - cursor.height)
            lag_seconds = max(0.0, tip[1] - cursor.block_time)
        return cls(running, source, cursor, lag_blocks, lag_seconds, staged, stats)

    def as_dict(self) -> dict[str, Any]:
        cursor = self.cursor
        stats = self.stats
        return {
            "running": self.running,
            "source": self.source,
            "cursor": None
            if cursor is None
            else {
                "height": cursor.height,
                "block_hash": cursor.block_hash,
                "index_hash": cursor.index_hash,
                "block_time": cursor.block_time,
                "anchored_from": cursor.anchored_from,
                "source": cursor.source,
            },
            "lag_blocks": self.lag_blocks,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "staged_records": self.staged,
            "blocks_applied": stats.blocks_applied,
            "blocks_skipped": stats.blocks_skipped,
            "reorgs": stats.reorgs,
            "blocks_undone": stats.blocks_undone,
            "pairs_applied": stats.pairs_applied,
            "pairs_read": stats.pairs_read,
            "reads_failed": stats.reads_failed,
            "flushes": stats.flushes,
            "fallbacks": stats.fallbacks,
            "drift_found": dict(stats.drift_found),
            "drift_repaired": dict(stats.drift_repaired),
            "reconciled": stats.reconciled,
            "last_error": stats.last_error,
        }
