"""A balance as the service answers it: the amount and how fresh it is (DESIGN.md 6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from balances.domain.tokens import to_display_units

#: Where an answer came from: the in-process cache, the blob store, or the chain just now.
Source = Literal["cache", "store", "chain"]
SOURCES: tuple[Source, ...] = ("cache", "store", "chain")
#: What is known of a token's metadata (decimals, symbol): ``known``; ``pending``, a
#: background read is under way or due; ``unknown``, reading it failed (retried later).
MetadataState = Literal["known", "pending", "unknown"]
METADATA_STATES: tuple[MetadataState, ...] = ("known", "pending", "unknown")


@dataclass(frozen=True, slots=True)
class Balance:
    """One token balance of one address, with its freshness.

    ``amount`` is in base units; ``balance`` is the same number as a decimal string
    (the wire form: u128 does not fit a JSON number). ``updated_at`` is when the
    chain last confirmed this amount and ``block_height`` the chain tip at that
    read, where known. ``stale`` is true when that is older than the staleness
    limit or the last attempt to refresh it failed; ``error`` then says why.
    ``decimals`` is None while the token's metadata is not known (``metadata`` says
    why); the amount is exact either way, only its display needs the decimals.
    """

    address: str
    token_id: str
    amount: int
    decimals: int | None
    updated_at: datetime | None
    block_height: int | None
    source: Source
    stale: bool
    error: str | None = None
    symbol: str | None = None
    #: Mempool amounts not yet confirmed (None: no source tells); never in ``amount``.
    pending_inbound: int | None = None
    pending_outbound: int | None = None
    metadata: MetadataState = "known"

    @property
    def balance(self) -> str:
        return str(self.amount)

    @property
    def display_amount(self) -> Decimal | None:
        """``amount / 10**decimals``, exactly; None while the decimals are unknown."""
        return None if self.decimals is None else to_display_units(self.amount, self.decimals)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (times as ISO 8601 UTC)."""
        return {
            "address": self.address,
            "token_id": self.token_id,
            "balance": self.balance,
            "decimals": self.decimals,
            "display_balance": None if self.display_amount is None else str(self.display_amount),
            "metadata": self.metadata,
            "symbol": self.symbol,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "block_height": self.block_height,
            "source": self.source,
            "stale": self.stale,
            "error": self.error,
            "pending": None
            if self.pending_inbound is None
            else {"inbound": str(self.pending_inbound), "outbound": str(self.pending_outbound)},
        }
