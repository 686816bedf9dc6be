"""``BalanceService``: current balances of Stacks addresses, with their freshness.

Reads go cache -> blob store -> chain. The in-process cache holds each address's
balances for ``cache_timeouts.current``; the store holds what every replica has
read; the chain is asked when the stored amount is missing or older than
``stale_after`` (``sync_on_read``). A failed chain read never replaces a known
amount: it comes back ``stale`` with the error. With nothing known, the caller gets
the error itself, never ``"0"``.

``BalanceService()`` with no arguments reads ``BALANCES_*`` settings (defaults: the
local store ``./.balances`` and the Hiro mainnet API).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from balances.blobs import (
    S3_STANDARD,
    VERCEL_BLOB,
    Problem,
)
from balances.blobs.health import reportable
from balances.domain import (
    Principal,
)
from balances.errors import (
    BalancesError,
    BlobStoreError,
)
from balances.service.history_api import HistoryAPI
from balances.stores.tokens.registry import TokenInfo
from balances.stores.tracked import TrackedAddress
from balances.sync.metadata import SeedReport

log = logging.getLogger("balances.service")


class BalanceService(HistoryAPI):
    """Current balances; see the module docstring. Use it as an async context manager
    (or call :meth:`close`) to release its HTTP client and store."""

    async def track(self, address: str, token_ids: Iterable[str] = ()) -> TrackedAddress:
        """Keep ``address`` fresh (and read these map-based tokens for it). With block
        ingestion running, it is read once now (its anchor); blocks keep it fresh."""
        principal = self._principal(address)
        entry = await self.tracked.track(principal, [self._token(t) for t in token_ids])
        if self.ingestion is not None and self.ingestion.running:
            await self.ingestion.index.refresh(force=True)
            self._spawn(self._anchor([principal]))
        return entry

    async def _anchor(self, principals: list[Principal]) -> None:
        try:
            await self.syncer.refresh_many(principals, confirm=True)
        except BalancesError as error:
            log.info(
                "anchoring %d addresses failed (the scheduler retries): %s", len(principals), error
            )
        for principal in principals:
            self.cache.invalidate(str(principal))

    async def untrack(self, address: str, token_ids: Iterable[str] | None = None) -> bool:
        principal = self._principal(address)
        tokens = None if token_ids is None else [self._token(t) for t in token_ids]
        return await self.tracked.untrack(principal, tokens)

    async def tracked_addresses(self) -> list[TrackedAddress]:
        return await self.tracked.entries()

    async def storage_problems(self) -> list[Problem]:
        """Blobs that failed to read lately, after probing the index blobs every
        answer needs (the tracked set; the sharded layout's manifest)."""
        for probe in (self.tracked.entries, self.layout.probe):
            try:
                await probe()
            except BlobStoreError as error:
                self.storage_failed(error)
        return self.storage_health.problems()

    def storage_failed(self, error: BlobStoreError) -> bool:
        """Record a storage failure met above the store (a blob that did not decode);
        True when it is news (then logged once, at warning level)."""
        return reportable(error) and self.storage_health.report(error)

    async def sync_token_metadata(self) -> SeedReport:
        """Seed the metadata of every token the Token Metadata API lists (bulk pages)."""
        return await self.catalog.fetcher.seed()

    async def metadata_settled(self) -> None:
        """Wait until the metadata that answers asked for is fetched (or failed)."""
        await self.catalog.fetcher.settled()

    async def get_token(self, token_id: str) -> TokenInfo:
        """What is known of a token (kind, asset name, SIP-010 metadata)."""
        return await self.catalog.info(self._token(token_id))

    async def clear_cache(self) -> None:
        """Drop the in-process caches (balances, series blobs); stores are untouched."""
        self.cache.clear()
        clear = getattr(self.layout, "clear", None)
        if clear is not None:
            clear()

    def cache_report(self) -> dict[str, Any]:
        """Cache statistics, blob operations by billing class and their estimated cost
        (at the store's own prices: S3 for s3://, Vercel Blob otherwise)."""
        stats = self.cache.stats()
        meter = self.blobs.snapshot()
        prices = S3_STANDARD if self.store_label in ("s3", "s3a") else VERCEL_BLOB
        return {
            **stats.as_dict(),
            "memory_bytes": stats.bytes,
            "blob_operations": dict(meter.operations),
            "blob_classes": {
                "simple": meter.simple,
                "advanced": meter.advanced,
                "free": meter.free,
            },
            "bytes_uploaded": meter.bytes_uploaded,
            "bytes_downloaded": meter.bytes_downloaded,
            "bytes_stored": meter.bytes_stored,
            "estimated_cost": meter.cost_report(prices).as_dict(),
        }
