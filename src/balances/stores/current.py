"""Current balances: what each address holds now, and how fresh each amount is.

:class:`AddressBalances` is one address's every token; :func:`merge` folds a
refresh (:class:`AddressUpdate`) into it. Merging is by read time, token by token:
a read older than what is stored never replaces it, so two writers that race can
only add information, never roll each other back. A complete listing of native
tokens (the API lists everything held) turns native tokens missing from it into a
read zero; without a complete listing nothing becomes zero (unknown is not zero).

Stores (:mod:`balances.stores.address_blobs` and later layouts) persist
``AddressBalances`` and apply updates with conditional writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, Protocol

from balances.domain import BalancePoint, Principal, TokenId
from balances.errors import BalancesError

#: How a token's balance is read: the STX endpoint, the native FT listing, or call-read.
TokenKindName = Literal["stx", "native", "map"]
STX_KEY = "stx"
#: The key of the native listing in ``errors`` (its failure concerns every native token).
LISTING_KEY = "*native-listing"


@dataclass(frozen=True, slots=True)
class Stamp:
    """When amounts were read from the chain (unix seconds) and the chain tip then."""

    at: float
    block_height: int | None = None


@dataclass(frozen=True, slots=True)
class TokenState:
    """One token's amount and the read that last confirmed it."""

    amount: int
    stamp: Stamp
    kind: TokenKindName


def token_key(token: TokenId) -> str:
    """The key of ``token`` in :attr:`AddressBalances.tokens`: its contract id (or ``stx``).

    A contract that defines several fungible tokens keeps each under its asset
    identifier instead (see :func:`balances.sync.syncer.native_amounts`).
    """
    return str(token)


def _lookup_keys(token: TokenId) -> tuple[str, ...]:
    if token.asset_identifier is None:
        return (str(token),)
    return (token.asset_identifier, str(token))


@dataclass(frozen=True, slots=True)
class AddressBalances:
    """Every known token balance of one address.

    ``listing`` is the stamp of the last complete native listing: a native token
    absent from ``tokens`` read as zero then. ``errors`` (kept in memory, never
    stored) holds the last failed refresh per key, cleared by a successful one.
    """

    address: str
    tokens: Mapping[str, TokenState] = field(default_factory=dict)
    listing: Stamp | None = None
    errors: Mapping[str, BalancesError] = field(default_factory=dict)

    def state(self, token: TokenId, kind: TokenKindName) -> TokenState | None:
        """The amount of ``token``, or None when it was never read (unknown)."""
        asset = token.asset_identifier  # the hot path of every read: no allocations
        found = None if asset is None else self.tokens.get(asset)
        if found is None:
            found = self.tokens.get(str(token))
        if found is not None:
            return found
        if kind == "native" and self.listing is not None:
            return TokenState(0, self.listing, "native")
        return None

    def error(self, token: TokenId, kind: TokenKindName) -> BalancesError | None:
        """Why the last refresh of ``token`` failed, if it did."""
        for key in _lookup_keys(token):
            if key in self.errors:
                return self.errors[key]
        return self.errors.get(LISTING_KEY) if kind == "native" else None

    @property
    def newest(self) -> float | None:
        """The time of the most recent read in here."""
        times = [state.stamp.at for state in self.tokens.values()]
        if self.listing is not None:
            times.append(self.listing.at)
        return max(times, default=None)


@dataclass(frozen=True, slots=True)
class AddressUpdate:
    """What one refresh of one address read.

    ``amounts`` holds what was read at ``stamp`` (key -> (amount, kind));
    ``listing_complete`` says the native listing succeeded, so stored native tokens
    it did not mention are now zero. ``errors`` are the keys whose reads failed.
    ``confirm`` asks the store to keep the stamp of reads that changed nothing too
    (an ingestion anchor: the height it was read at must persist).
    """

    address: str
    stamp: Stamp
    amounts: Mapping[str, tuple[int, TokenKindName]]
    listing_complete: bool = False
    errors: Mapping[str, BalancesError] = field(default_factory=dict)
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """A balance that moved: the change point time series record."""

    address: str
    key: str
    kind: TokenKindName
    old: int | None
    new: int
    stamp: Stamp

    def point(self) -> BalancePoint:
        """This change as a point of the token's step function."""
        at = datetime.fromtimestamp(self.stamp.at, UTC)
        return BalancePoint(at, self.new, self.stamp.block_height)


@dataclass(frozen=True, slots=True)
class Merged:
    """The outcome of :func:`merge`: the new state, what moved, and whether to persist."""

    balances: AddressBalances
    changes: tuple[Change, ...]
    needs_write: bool


def merge(current: AddressBalances | None, update: AddressUpdate) -> Merged:
    """Fold ``update`` into ``current`` (None: nothing known yet)."""
    base = current or AddressBalances(update.address)
    tokens = dict(base.tokens)
    changes: list[Change] = []
    reads = dict(update.amounts)
    # A first refresh is stored even if nothing moved (it is what was read), but one
    # whose every read failed stores nothing: there is nothing to keep.
    needs_write = current is None and bool(reads or update.listing_complete)
    if update.listing_complete:
        for key, state in base.tokens.items():
            if state.kind == "native" and key not in reads:
                reads[key] = (0, "native")
    for key, (amount, kind) in reads.items():
        known = tokens.get(key)
        if known is not None and known.stamp.at > update.stamp.at:
            continue  # a newer read is already stored: keep it
        tokens[key] = TokenState(amount, update.stamp, kind)
        if known is None or known.amount != amount:
            needs_write = True
            old = None if known is None else known.amount
            changes.append(Change(update.address, key, kind, old, amount, update.stamp))
    listing = base.listing
    if update.listing_complete and (listing is None or listing.at <= update.stamp.at):
        needs_write = needs_write or listing is None
        listing = update.stamp
    errors = {key: msg for key, msg in base.errors.items() if key not in reads}
    if update.listing_complete:
        errors.pop(LISTING_KEY, None)
    errors.update(update.errors)
    merged = replace(base, tokens=tokens, listing=listing, errors=errors)
    return Merged(merged, tuple(changes), needs_write)


def merge_views(older: AddressBalances, newer: AddressBalances) -> AddressBalances:
    """``older`` with every newer read of ``newer`` laid over it (for a refresh that
    could not be stored: what was stored before still stands where not re-read)."""
    tokens = dict(older.tokens)
    for key, state in newer.tokens.items():
        known = tokens.get(key)
        if known is None or known.stamp.at <= state.stamp.at:
            tokens[key] = state
    listing = older.listing
    if newer.listing is not None and (listing is None or listing.at <= newer.listing.at):
        listing = newer.listing
    return AddressBalances(older.address, tokens, listing, {**older.errors, **newer.errors})


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


def apply_changes(
    balances: AddressBalances | None,
    address: str,
    changes: Iterable[Change],
    listing: Stamp | None = None,
) -> AddressBalances:
    """``balances`` with each change laid over it where it is newer (per token, by
    stamp): how journal records fold, in any order, into the same result."""
    base = balances or AddressBalances(address)
    tokens = dict(base.tokens)
    for change in changes:
        known = tokens.get(change.key)
        if known is None or known.stamp.at <= change.stamp.at:
            tokens[change.key] = TokenState(change.new, change.stamp, change.kind)
    newest = base.listing
    if listing is not None and (newest is None or newest.at <= listing.at):
        newest = listing
    return AddressBalances(base.address, tokens, newest, base.errors)
