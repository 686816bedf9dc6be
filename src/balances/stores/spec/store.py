"""The original service's layout, kept as a working baseline (``BALANCES_LAYOUT=spec``).

- ``spec/current/<address>``: the address's current balances, rewritten on change;
- ``spec/series/<address>/<YYYY-MM>``: that month's change points of the address,
  rewritten on every change;
- ``spec/snapshots/<address>/<YYYY-MM-DD>``: the address's balances at each day's
  end, written once a day by :meth:`SpecLayoutStore.maintain`.

Simple, and expensive at scale: every change is two writes, every address a write a
day, and a year of daily history is 365 reads. The cost model runs it beside the
sharded layout on the same workload (docs/storage.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime, timedelta

from balances.blobs import CREATE, BlobStore, IfMatch, WriteMode, blob_key
from balances.domain import BalancePoint, Principal
from balances.domain.current import (
    AddressBalances,
    AddressUpdate,
    Change,
    Merged,
    TokenKindName,
    merge,
)
from balances.domain.series import downsample, normalize, value_at
from balances.errors import (
    BalancesError,
    BlobNotFoundError,
    PreconditionFailedError,
    WriteConflictError,
)
from balances.stores.encoding import CONTENT_TYPE
from balances.stores.layout import MaintenanceReport, Resolution, SeriesSlice
from balances.stores.sharded.compact import conflict_pause
from balances.stores.sharded.documents import MonthSeries, decode_month, encode_month, month_of
from balances.stores.sharded.read import months_between
from balances.stores.spec.address_blobs import (
    AddressBlobBalanceStore,
    decode_balances,
    encode_balances,
)

PREFIX = "spec"
ATTEMPTS = 8


class SpecLayoutStore:
    """Current balances, monthly series and daily snapshots, one blob per address each."""

    def __init__(
        self,
        blobs: BlobStore,
        *,
        max_points_per_month: int = 1000,
        retention_days: int = 365,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.blobs = blobs
        self._current = AddressBlobBalanceStore(blobs, prefix=f"{PREFIX}/current")
        self._max_points = max_points_per_month
        self._retention_days = retention_days
        self._wall = wall_clock

    # --- current balances ------------------------------------------------------

    async def load(self, address: Principal) -> AddressBalances | None:
        return await self._current.load(address)

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        return await self._current.load_many(addresses)

    async def apply(self, update: AddressUpdate) -> Merged:
        """History first, then the current blob: if the second write fails, the next
        refresh still sees the change and writes it (a repeated point is a no-op)."""
        address = Principal.parse(update.address)
        preview = merge(await self._current.load_remembered(address), update)
        await self.record_history(address, preview.changes)
        merged = await self._current.apply(update)
        late = [change for change in merged.changes if change not in preview.changes]
        await self.record_history(address, late)  # changes another writer's race revealed
        return merged

    async def apply_many(self, updates: Sequence[AddressUpdate]) -> list[Merged | BalancesError]:
        async def one(update: AddressUpdate) -> Merged | BalancesError:
            try:
                return await self.apply(update)
            except BalancesError as error:
                return error

        return list(await asyncio.gather(*(one(update) for update in updates)))

    # --- history ---------------------------------------------------------------

    def month_key(self, address: str, month: str) -> str:
        return blob_key(PREFIX, "series", address, month)

    def snapshot_key(self, address: str, day: date) -> str:
        return blob_key(PREFIX, "snapshots", address, day.isoformat())

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None:
        """Rewrite each month blob the changes fall in (the spec's write per change)."""
        by_month: dict[str, list[Change]] = {}
        for change in changes:
            by_month.setdefault(month_of(change.point().at), []).append(change)
        for month, found in by_month.items():
            await self._append(str(address), month, found)

    async def _append(self, address: str, month: str, changes: list[Change]) -> None:
        key = self.month_key(address, month)
        for attempt in range(ATTEMPTS):
            doc, mode = await self._read_month(key)
            series = dict(doc.series)
            for change in changes:
                kind, points = series.get((address, change.key), (change.kind, ()))
                merged = downsample(normalize([*points, change.point()]), self._max_points)
                series[(address, change.key)] = (kind, tuple(merged))
            data = encode_month(MonthSeries(None, series))
            try:
                await self.blobs.put(key, data, mode=mode, content_type=CONTENT_TYPE)
            except PreconditionFailedError:
                await conflict_pause(attempt)
                continue
            return
        raise WriteConflictError(f"{key}: lost {ATTEMPTS} conditional writes in a row")

    async def _read_month(self, key: str) -> tuple[MonthSeries, WriteMode]:
        try:
            blob = await self.blobs.get(key)
        except BlobNotFoundError:
            return MonthSeries(None), CREATE
        return decode_month(blob.data, key), IfMatch(blob.etag)

    async def series(
        self,
        address: Principal,
        start: datetime,
        end: datetime,
        *,
        keys: Collection[str] | None = None,
        resolution: Resolution = "raw",
    ) -> dict[str, SeriesSlice]:
        name = str(address)
        if resolution == "daily":
            gathered = await self._from_snapshots(name, start, end)
        else:
            gathered = await self._from_months(name, start, end)
        slices = {}
        for key, (kind, points) in gathered.items():
            if keys is not None and key not in keys:
                continue
            ordered = normalize(points)
            inside = tuple(p for p in ordered if start < p.at <= end)
            slices[key] = SeriesSlice(kind, value_at(ordered, start), inside)
        return slices

    async def _from_months(
        self, address: str, start: datetime, end: datetime
    ) -> dict[str, tuple[TokenKindName, list[BalancePoint]]]:
        """The window's months, plus earlier ones until every series' opening is known
        (walking back at most as far as retention)."""
        gathered: dict[str, tuple[TokenKindName, list[BalancePoint]]] = {}
        months = months_between(start, end)
        oldest = datetime.fromtimestamp(self._wall(), UTC) - timedelta(days=self._retention_days)
        back = start
        while True:
            for month in months:
                doc, _ = await self._read_month(self.month_key(address, month))
                for (_, key), (kind, points) in doc.series.items():
                    gathered.setdefault(key, (kind, []))[1].extend(points)
            opened = all(any(p.at <= start for p in pts) for _, pts in gathered.values())
            back = back.replace(day=1) - timedelta(days=1)
            if (gathered and opened) or back < oldest:
                return gathered
            months = [month_of(back)]

    async def _from_snapshots(
        self, address: str, start: datetime, end: datetime
    ) -> dict[str, tuple[TokenKindName, list[BalancePoint]]]:
        """One snapshot read per day (the spec's daily history), from the day before the
        window (its opening) to the end's day, whose changes so far come from its month."""
        first = start.date() - timedelta(days=1)
        days = [first + timedelta(days=n) for n in range((end.date() - first).days + 1)]
        snapshots = await asyncio.gather(*(self._snapshot(address, day) for day in days))
        gathered: dict[str, tuple[TokenKindName, list[BalancePoint]]] = {}
        for day, snapshot in zip(days, snapshots, strict=True):
            if snapshot is None:
                continue
            at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                days=1, microseconds=-1
            )
            for key, state in snapshot.tokens.items():
                gathered.setdefault(key, (state.kind, []))[1].append(BalancePoint(at, state.amount))
        doc, _ = await self._read_month(self.month_key(address, month_of(end)))
        today = datetime.combine(end.date(), datetime.min.time(), UTC)
        for (_, key), (kind, points) in doc.series.items():
            gathered.setdefault(key, (kind, []))[1].extend(p for p in points if p.at >= today)
        return gathered

    async def _snapshot(self, address: str, day: date) -> AddressBalances | None:
        key = self.snapshot_key(address, day)
        try:
            blob = await self.blobs.get(key)
        except BlobNotFoundError:
            return None
        return decode_balances(blob.data, key)

    async def first_seen(self, address: Principal) -> datetime | None:
        months = [
            key
            async for key in self.blobs.iter_keys(blob_key(PREFIX, "series", str(address)) + "/")
        ]
        if not months:
            return None
        doc, _ = await self._read_month(sorted(months)[0])
        times = [p.at for _, points in doc.series.values() for p in points]
        return min(times) if times else None

    async def probe(self) -> None:
        """Nothing to probe: this layout has no index blob (each address is its own)."""

    async def maintain(self, now: float | None = None) -> MaintenanceReport:
        """Write today's snapshot of every address (the spec's daily snapshots)."""
        moment = datetime.fromtimestamp(self._wall() if now is None else now, UTC)
        prefix = f"{PREFIX}/current/"
        written = 0
        async for key in self.blobs.iter_keys(prefix):
            blob = await self.blobs.get(key)
            balances = decode_balances(blob.data, key)
            snapshot = self.snapshot_key(balances.address, moment.date())
            await self.blobs.put(snapshot, encode_balances(balances), content_type=CONTENT_TYPE)
            written += 1
        return MaintenanceReport(blobs_written=written)
