"""Metering: count what a store is billed for, and price it.

:class:`MeteredBlobStore` wraps any :class:`~balances.blobs.base.BlobStore` and
counts operations by billing class, the way Vercel Blob, S3 and R2 bill them:

- **simple** (Vercel "simple", S3 GET class, R2 class B): ``get``, ``head``;
- **advanced** (Vercel "advanced", S3 PUT/COPY/POST/LIST, R2 class A): ``put``, ``list``;
- **free**: ``delete``.

An operation counts when it is attempted, whether or not it succeeds (providers
bill refused and failed requests too). It also counts bytes uploaded (put
payloads sent), bytes downloaded (blob bytes received) and bytes stored: the
size of every blob it has seen written and not deleted. Bytes stored is exact
when the wrapper sees every write from an empty store (the cost model's case);
:meth:`MeteredBlobStore.measure_stored` seeds it from an existing store.

Prices are per-use list prices, without free tiers; a GB is 10^9 bytes (providers
that bill by GiB then cost about 7 % less than reported: the report errs high).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from balances.blobs.base import (
    DEFAULT_CONTENT_TYPE,
    MAX_LIST_LIMIT,
    OVERWRITE,
    Blob,
    BlobInfo,
    BlobPage,
    BlobStore,
    WriteMode,
    keys_of,
)
from balances.errors import BlobNotFoundError

# The protocol has no copy; a copy would be "advanced" like put.
BILLING_CLASS = {"get": "simple", "head": "simple", "put": "advanced", "list": "advanced"}
BILLING_CLASS |= {"delete": "free"}


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Dollar prices of one provider."""

    name: str
    storage_per_gb_month: float
    simple_per_million: float
    advanced_per_million: float
    transfer_out_per_gb: float
    bytes_per_gb: int = 1_000_000_000


VERCEL_BLOB = PriceTable("Vercel Blob", 0.023, 0.40, 5.00, 0.05)
# S3 Standard: GET $0.0004 / 1,000; PUT, COPY, POST, LIST $0.005 / 1,000; egress $0.09 / GB.
S3_STANDARD = PriceTable("S3 Standard", 0.023, 0.40, 5.00, 0.09)
# R2: class B $0.36 / million, class A $4.50 / million, egress free.
CLOUDFLARE_R2 = PriceTable("Cloudflare R2", 0.015, 0.36, 4.50, 0.0)
PRICE_TABLES = {table.name: table for table in (VERCEL_BLOB, S3_STANDARD, CLOUDFLARE_R2)}


@dataclass(frozen=True, slots=True)
class CostReport:
    """Dollars by category for one price table."""

    prices: str
    storage: float
    simple_operations: float
    advanced_operations: float
    transfer: float

    @property
    def total(self) -> float:
        return self.storage + self.simple_operations + self.advanced_operations + self.transfer

    def as_dict(self) -> dict[str, float | str]:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    """The counters at one moment."""

    operations: dict[str, int]
    simple: int
    advanced: int
    free: int
    bytes_uploaded: int
    bytes_downloaded: int
    bytes_stored: int
    blobs_stored: int

    def cost_report(self, prices: PriceTable, months: float = 1.0) -> CostReport:
        """What these counts cost: the operations and transfer as counted, plus
        storing ``bytes_stored`` for ``months``."""
        gigabytes = prices.bytes_per_gb
        return CostReport(
            prices=prices.name,
            storage=self.bytes_stored / gigabytes * prices.storage_per_gb_month * months,
            simple_operations=self.simple / 1e6 * prices.simple_per_million,
            advanced_operations=self.advanced / 1e6 * prices.advanced_per_million,
            transfer=self.bytes_downloaded / gigabytes * prices.transfer_out_per_gb,
        )


class MeteredBlobStore(BlobStore):
    """A :class:`BlobStore` that counts what passes through it to ``inner``."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self._lock = threading.RLock()
        self._operations: dict[str, int] = dict.fromkeys(BILLING_CLASS, 0)
        self._uploaded = 0
        self._downloaded = 0
        self._sizes: dict[str, int] = {}

    def _count(self, op: str | None, *, uploaded: int = 0, downloaded: int = 0) -> None:
        with self._lock:
            if op is not None:
                self._operations[op] += 1
            self._uploaded += uploaded
            self._downloaded += downloaded

    def _stored(self, key: str, size: int | None) -> None:
        with self._lock:
            if size is None:
                self._sizes.pop(key, None)
            else:
                self._sizes[key] = size

    async def get(self, key: str) -> Blob:
        self._count("get")
        try:
            blob = await self.inner.get(key)
        except BlobNotFoundError:
            self._stored(key, None)
            raise
        self._count(None, downloaded=blob.size)
        self._stored(key, blob.size)
        return blob

    async def head(self, key: str) -> BlobInfo:
        self._count("head")
        info = await self.inner.head(key)
        self._stored(key, info.size)
        return info

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: WriteMode = OVERWRITE,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> BlobInfo:
        self._count("put", uploaded=len(data))
        info = await self.inner.put(key, data, mode=mode, content_type=content_type)
        self._stored(key, info.size)
        return info

    async def list(
        self, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_LIST_LIMIT
    ) -> BlobPage:
        self._count("list")
        page = await self.inner.list(prefix, cursor=cursor, limit=limit)
        for item in page.items:
            self._stored(item.key, item.size)
        return page

    async def delete(self, keys: str | Iterable[str]) -> None:
        wanted = keys_of(keys)
        self._count("delete")
        await self.inner.delete(wanted)
        for key in wanted:
            self._stored(key, None)

    async def close(self) -> None:
        await self.inner.close()

    async def measure_stored(self, prefix: str = "") -> int:
        """Seed bytes stored by listing ``inner`` (not counted as operations)."""
        async for item in self.inner.iter_blobs(prefix):
            self._stored(item.key, item.size)
        return self.snapshot().bytes_stored

    def snapshot(self) -> MeterSnapshot:
        with self._lock:
            operations = dict(self._operations)
            classes = dict.fromkeys(("simple", "advanced", "free"), 0)
            for op, count in operations.items():
                classes[BILLING_CLASS[op]] += count
            return MeterSnapshot(
                operations=operations,
                simple=classes["simple"],
                advanced=classes["advanced"],
                free=classes["free"],
                bytes_uploaded=self._uploaded,
                bytes_downloaded=self._downloaded,
                bytes_stored=sum(self._sizes.values()),
                blobs_stored=len(self._sizes),
            )

    def reset(self) -> MeterSnapshot:
        """Zero the operation and transfer counters (not bytes stored: that is state);
        return the snapshot taken just before."""
        with self._lock:
            before = self.snapshot()
            self._operations = dict.fromkeys(BILLING_CLASS, 0)
            self._uploaded = self._downloaded = 0
        return before

    def cost_report(self, prices: PriceTable, months: float = 1.0) -> CostReport:
        return self.snapshot().cost_report(prices, months)
