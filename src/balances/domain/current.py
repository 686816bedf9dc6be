"""Current balances: what each address holds now, and how fresh each amount is.

:class:`AddressBalances` (a *view*) is one address's every token; :func:`merge`
folds a refresh (:class:`AddressUpdate`) into it, :func:`apply_changes` folds
journal records into it and :func:`merge_views` joins two views. The laws these
rules obey are written down in ``docs/folding.md``; in short:

- token states, stamps and failures are totally ordered, and folding keeps the
  greatest per key: a *join*, so folding journal entries in any order, in any
  grouping (segments, compaction passes, a tail over a shard blob) and any number
  of times gives one result;
- a read older than what is stored never replaces it, so two writers that race
  can only add information, never roll each other back;
- a complete listing of native tokens turns the stored native tokens missing from
  it into a read zero; without a complete listing nothing becomes zero (unknown
  is not zero);
- a failure is shown only while it is newer than the amount it concerns.

Every rule is a small pure function, so a new kind of journal entry adds one rule
beside these. Retractions (:mod:`balances.domain.retractions`) are the one entry
that is not a join: they fold after the change they void (docs/folding.md).

These are the domain's rules, pure and without I/O; the layouts of
:mod:`balances.stores` persist ``AddressBalances`` with conditional writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from balances.domain import BalancePoint, TokenId
from balances.errors import BalancesError

#: How a token's balance is read: the STX endpoint, the native FT listing, or call-read.
TokenKindName = Literal["stx", "native", "map"]
STX_KEY = "stx"
#: The key of the native listing in ``failures`` (its failure concerns every native token).
LISTING_KEY = "*native-listing"


@dataclass(frozen=True, slots=True)
class Stamp:
    """When amounts were read from the chain (unix seconds) and the chain tip then."""

    at: float
    block_height: int | None = None


def stamp_order(stamp: Stamp) -> tuple[float, bool, int]:
    """Where ``stamp`` sorts among reads: by time, then by block height, a stamp
    without a height before any with one (it knew less about the chain)."""
    height = stamp.block_height
    return stamp.at, height is not None, height or 0


def later_stamp(a: Stamp | None, b: Stamp | None) -> Stamp | None:
    """The later of two stamps by :func:`stamp_order` (None: never; equal: ``a``)."""
    if a is None or (b is not None and stamp_order(b) > stamp_order(a)):
        return b
    return a


@dataclass(frozen=True, slots=True)
class TokenState:
    """One token's amount and the read that last confirmed it."""

    amount: int
    stamp: Stamp
    kind: TokenKindName


def state_order(state: TokenState) -> tuple[tuple[float, bool, int], int, str]:
    """The total order of token states: by stamp; at one stamp the larger amount (the
    rule :func:`balances.domain.series.normalize` uses for one slot), then the kind
    by name. Two states equal in this order are equal."""
    return stamp_order(state.stamp), state.amount, state.kind


def later_state(known: TokenState | None, read: TokenState) -> TokenState:
    """Which of two states of one token stands: the greater by :func:`state_order`."""
    if known is None or state_order(read) > state_order(known):
        return read
    return known


@dataclass(frozen=True, slots=True)
class Failure:
    """A read that failed (in memory only, never stored): why, and the stamp of the
    refresh it belonged to."""

    error: BalancesError
    stamp: Stamp


def failure_order(failure: Failure) -> tuple[tuple[float, bool, int], str, str]:
    """The total order of failures of one key: by stamp, then the error's type and
    message (failures equal in all three are interchangeable)."""
    return stamp_order(failure.stamp), type(failure.error).__name__, str(failure.error)


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
    """Every known token balance of one address: a *view* (docs/folding.md).

    ``listing`` is the stamp of the last complete native listing: a native token
    absent from ``tokens`` read as zero then. ``failures`` (kept in memory, never
    stored) holds per key the newest failed read that is newer than the key's
    amount (for :data:`LISTING_KEY`: newer than ``listing``).
    """

    address: str
    tokens: Mapping[str, TokenState] = field(default_factory=dict)
    listing: Stamp | None = None
    failures: Mapping[str, Failure] = field(default_factory=dict)

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
        """Why the last refresh of ``token`` failed, while that is newer than its amount.

        A native token is shown the listing's failure unless the token itself was
        read at or after it (by the same refresh, or a single-token refresh later)."""
        for key in _lookup_keys(token):
            if key in self.failures:
                return self.failures[key].error
        listed = self.failures.get(LISTING_KEY) if kind == "native" else None
        if listed is None:
            return None
        state = self.state(token, kind)
        if state is None or stamp_order(listed.stamp) > stamp_order(state.stamp):
            return listed.error
        return None

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
    """A balance that moved: the change point time series record, and the journal's
    entry for one token (``old`` is for callers; the journal does not keep it)."""

    address: str
    key: str
    kind: TokenKindName
    old: int | None
    new: int
    stamp: Stamp

    def state(self) -> TokenState:
        """The token state this change sets."""
        return TokenState(self.new, self.stamp, self.kind)

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


# --- the join of views ----------------------------------------------------------------


def join_tokens(a: Mapping[str, TokenState], b: Mapping[str, TokenState]) -> dict[str, TokenState]:
    """Per key, the later of the two states (a key in one only is kept)."""
    tokens = dict(a)
    for key, state in b.items():
        tokens[key] = later_state(tokens.get(key), state)
    return tokens


def join_failures(a: Mapping[str, Failure], b: Mapping[str, Failure]) -> dict[str, Failure]:
    """Per key, the greater failure by :func:`failure_order`."""
    failures = dict(a)
    for key, failure in b.items():
        known = failures.get(key)
        if known is None or failure_order(failure) > failure_order(known):
            failures[key] = failure
    return failures


def in_force(
    failures: Mapping[str, Failure], tokens: Mapping[str, TokenState], listing: Stamp | None
) -> dict[str, Failure]:
    """The failures still newer than what they concern: a read of the key (for the
    listing's, a complete listing) at or after a failure clears it."""
    kept = {}
    for key, failure in failures.items():
        if key == LISTING_KEY:
            concerned = listing
        else:
            known = tokens.get(key)
            concerned = None if known is None else known.stamp
        if concerned is None or stamp_order(failure.stamp) > stamp_order(concerned):
            kept[key] = failure
    return kept


def merge_views(a: AddressBalances, b: AddressBalances) -> AddressBalances:
    """The join of two views of one address: per token the later state, the later
    listing, per key the newer failure that is still in force. Commutative,
    associative and idempotent (docs/folding.md), so which view is older does not
    matter: used to lay a journal tail over a shard blob, or a refresh that could
    not be stored over what was stored before."""
    tokens = join_tokens(a.tokens, b.tokens)
    listing = later_stamp(a.listing, b.listing)
    failures = join_failures(a.failures, b.failures)
    return AddressBalances(a.address, tokens, listing, in_force(failures, tokens, listing))


# --- journal records --------------------------------------------------------------------


def journal_view(
    address: str, changes: Iterable[Change], listing: Stamp | None = None
) -> AddressBalances:
    """One journal record as a view: each change's state (the later of two for one
    key) and the record's complete listing."""
    tokens: dict[str, TokenState] = {}
    for change in changes:
        tokens[change.key] = later_state(tokens.get(change.key), change.state())
    return AddressBalances(address, tokens, listing)


def apply_changes(
    balances: AddressBalances | None,
    address: str,
    changes: Iterable[Change],
    listing: Stamp | None = None,
) -> AddressBalances:
    """``balances`` joined with one journal record (:func:`journal_view`): how journal
    records fold, in any order and any number of times, into the same result."""
    base = balances or AddressBalances(address)
    return merge_views(base, journal_view(address, changes, listing))


# --- refreshes ------------------------------------------------------------------------------


def update_view(base: AddressBalances, update: AddressUpdate) -> AddressBalances:
    """What ``update`` says about ``base``'s address, as a view: every read at the
    update's stamp; with a complete listing, a zero for each native token of ``base``
    it did not list, and the listing's stamp; each failed read as a failure."""
    stamp = update.stamp
    tokens = {
        key: TokenState(amount, stamp, kind) for key, (amount, kind) in update.amounts.items()
    }
    if update.listing_complete:
        for key, known in base.tokens.items():
            if known.kind == "native" and key not in tokens:
                tokens[key] = TokenState(0, stamp, "native")
    listing = stamp if update.listing_complete else None
    failures = {key: Failure(error, stamp) for key, error in update.errors.items()}
    return AddressBalances(update.address, tokens, listing, failures)


def moved(known: TokenState | None, read: TokenState) -> bool:
    """Whether ``read`` is a change over ``known``: a first read, or a later read of
    another amount (a later read of the same amount only confirms it)."""
    return known is None or (known.amount != read.amount and state_order(read) > state_order(known))


def merge(current: AddressBalances | None, update: AddressUpdate) -> Merged:
    """Fold ``update`` into ``current`` (None: nothing known yet).

    The result is ``current`` joined with :func:`update_view`; the changes are the
    reads that :func:`moved`, and a write is needed when something moved or the
    first complete listing arrived (a confirmation's fresher stamp is kept in
    memory only). So a first refresh is written when it read anything, even only a
    complete listing of no native token, and not when every read failed.
    """
    base = current or AddressBalances(update.address)
    read = update_view(base, update)
    changes = changes_of(base, read)
    balances = merge_views(base, read)
    first_listing = base.listing is None and balances.listing is not None
    return Merged(balances, changes, bool(changes) or first_listing)


def changes_of(base: AddressBalances, read: AddressBalances) -> tuple[Change, ...]:
    """The reads of ``read`` that :func:`moved` over ``base``, as changes."""
    changes = []
    for key, state in read.tokens.items():
        known = base.tokens.get(key)
        if moved(known, state):
            old = None if known is None else known.amount
            changes.append(Change(read.address, key, state.kind, old, state.amount, state.stamp))
    return tuple(changes)
