"""How the ingestor paces its writes, how far it undoes and reads, and when it
vouches for freshness (``BALANCES_INGEST__*`` sets these; see docs/ingestion.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IngestSettings:
    flush_seconds: float = 50.0
    #: A cursor-only segment is written when nothing changed for this long.
    mark_seconds: float = 600.0
    window: int = 128
    max_lag_blocks: int = 720
    #: Ingestion vouches for freshness only while it is this close to the tip.
    fresh_lag_blocks: int = 12
    fresh_seconds: float = 120.0
    read_concurrency: int = 8
    read_attempts: int = 4
    #: Pairs re-read to verify a reorg's undo (the rest trust the undo).
    reorg_reads: int = 200
