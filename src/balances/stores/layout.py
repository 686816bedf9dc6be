"""What a storage layout offers: current balances, history slices, maintenance."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from balances.domain import BalancePoint, Principal
from balances.domain.current import AddressBalances, AddressUpdate, Change, Merged, TokenKindName
from balances.domain.feed import ChangeDraft, FeedEntry
from balances.errors import BalancesError

#: ``raw``: every change point; ``daily``: each day's closing amount (enough for
#: day, week and month buckets, which end on day boundaries).
Resolution = Literal["raw", "daily"]


class CurrentBalanceStore(Protocol):
    """Where current balances persist. Every method raises on failure."""

    async def load(self, address: Principal) -> AddressBalances | None:
        """The stored balances of ``address``, or None if it was never synced."""
        ...

    async def load_many(self, addresses: Sequence[Principal]) -> dict[str, AddressBalances | None]:
        """Like :meth:`load` for many addresses (keys: canonical addresses)."""
        ...

    async def apply(self, update: AddressUpdate) -> Merged:
        """Merge ``update`` into what is stored and persist it if anything changed."""
        ...

    async def apply_many(self, updates: Sequence[AddressUpdate]) -> list[Merged | BalancesError]:
        """:meth:`apply` for many addresses, in order; a layout may batch their writes.
        One address failing gives its error in its place, not for the batch."""
        ...


@dataclass(frozen=True, slots=True)
class SeriesSlice:
    """One token's history over a window: the amount in force at the window's start
    (``opening``; None when nothing was known then) and the change points after it,
    up to and including the window's end, oldest first."""

    kind: TokenKindName
    opening: int | None
    points: tuple[BalancePoint, ...] = ()


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What one maintenance pass did."""

    segments_folded: int = 0
    blobs_written: int = 0
    blobs_deleted: int = 0
    notes: list[str] = field(default_factory=list)


class BalanceLayout(CurrentBalanceStore, Protocol):
    """Current balances plus their history, in one storage layout."""

    async def series(
        self,
        address: Principal,
        start: datetime,
        end: datetime,
        *,
        keys: Collection[str] | None = None,
        resolution: Resolution = "raw",
    ) -> dict[str, SeriesSlice]:
        """Every (or each of ``keys``) token's slice of ``[start, end]``."""
        ...

    async def first_seen(self, address: Principal) -> datetime | None:
        """When the history of ``address`` begins (None: it has none)."""
        ...

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None:
        """Add past change points (backfill); the current amounts keep newer reads."""
        ...

    async def probe(self) -> None:
        """Read the layout's index blobs (cheaply: cached copies are re-checked at
        most every recheck), raising what a damaged one raises."""
        ...

    async def maintain(self, now: float | None = None) -> MaintenanceReport:
        """Compaction, rollups and retention, as the layout needs them."""
        ...


class ChangeSink(Protocol):
    """Where a store hands the balance changes it applies (the change feed,
    :class:`balances.stores.feed.ChangeFeed`): numbered at once, written after each
    journal segment."""

    def emit(self, drafts: Sequence[ChangeDraft]) -> Sequence[FeedEntry]: ...

    async def flush(self) -> None: ...
