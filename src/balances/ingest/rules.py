"""The rules that fold a block's events into stored balances (pure; docs/ingestion.md).

A block's effect on one (address, token) pair is a signed delta: the sum of its
moves, fees included. Whether the delta may be added to what is stored depends on
what the stored amount is known to hold:

- the amount is **anchored** when it was read, or set by a block, at a known
  height ``h`` no older than the start of unbroken ingestion (``anchored_from``):
  every block after ``h`` has then been folded, so the amount is exact as of the
  last folded block;
- a block at height ``H <= h`` is **already in** the amount (the read saw it);
- a block at ``H > h`` adds its delta. A sum below zero or above u128 cannot be
  chain state: the stored amount has **drifted**, so the pair is read again;
- an amount never read (unknown, not zero), or not anchored, is **read**.

A native token the address never held is zero as of its last complete listing,
so a listing counts as the anchor of every native token absent from it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from balances.chain.clarity import (
    ClarityValue,
    ContractPrincipal,
    List,
    ResponseErr,
    ResponseOk,
    Some,
    StandardPrincipal,
    Tuple,
    deserialize,
)
from balances.chain.events import STX_ASSET, AssetMove, ChainBlock
from balances.domain import MAX_AMOUNT
from balances.domain.current import AddressBalances, Stamp, TokenKindName, TokenState
from balances.errors import BalancesError

ReadReason = Literal["unknown", "unanchored", "drift"]


@dataclass(frozen=True, slots=True)
class Applied:
    """The delta folds: the pair's amount after the block."""

    amount: int


@dataclass(frozen=True, slots=True)
class AlreadyIn:
    """The stored amount was read at or after this block: nothing to do."""


@dataclass(frozen=True, slots=True)
class NeedsRead:
    """The delta cannot be trusted on what is stored; read the pair from the chain."""

    reason: ReadReason


Outcome = Applied | AlreadyIn | NeedsRead
#: Whether an address is tracked (only tracked addresses are folded).
Tracked = Callable[[str], bool]


def block_deltas(block: ChainBlock, tracked: Tracked) -> dict[str, dict[str, int]]:
    """address -> asset -> signed delta, for tracked addresses only (zero sums kept:
    a pair touched by the block is confirmed at it even when it nets to zero)."""
    deltas: dict[str, dict[str, int]] = {}
    for move in block.moves():
        _add(deltas, tracked, move.sender, move, -move.amount)
        _add(deltas, tracked, move.recipient, move, move.amount)
    return deltas


def _add(
    deltas: dict[str, dict[str, int]],
    tracked: Tracked,
    who: str | None,
    move: AssetMove,
    amount: int,
) -> None:
    if who is None or not tracked(who):
        return
    assets = deltas.setdefault(who, {})
    assets[move.asset] = assets.get(move.asset, 0) + amount


def token_key_of(asset: str, balances: AddressBalances | None) -> tuple[str, TokenKindName]:
    """The store key of ``asset`` for this address, and its kind.

    Native tokens are kept under their contract id, except where the address holds
    several tokens of one contract, which are kept under their asset identifiers
    (as a refresh stores them: :func:`balances.sync.syncer.native_amounts`).
    """
    if asset == STX_ASSET:
        return STX_ASSET, "stx"
    contract = asset.partition("::")[0]
    tokens = {} if balances is None else balances.tokens
    if asset in tokens or any(key.startswith(contract + "::") for key in tokens):
        return asset, "native"
    return contract, "native"


def base_state(
    balances: AddressBalances | None, key: str, kind: TokenKindName
) -> TokenState | None:
    """What is stored for the pair: its own state, or a native token's zero as of the
    last complete listing, or None (never read)."""
    if balances is None:
        return None
    found = balances.tokens.get(key)
    if found is not None:
        if kind == "native" and balances.listing is not None:
            return _confirmed_by_listing(found, balances.listing)
        return found
    if kind == "native" and balances.listing is not None:
        return TokenState(0, balances.listing, "native")
    return None


def _confirmed_by_listing(state: TokenState, listing: Stamp) -> TokenState:
    """A complete listing read every native amount it covers: a token older than the
    listing was confirmed by it (a change would have been stored with its stamp)."""
    if _height(listing) > _height(state.stamp) and listing.at >= state.stamp.at:
        return TokenState(state.amount, listing, state.kind)
    return state


def _height(stamp: Stamp) -> int:
    return -1 if stamp.block_height is None else stamp.block_height


def fold_delta(base: TokenState | None, delta: int, height: int, anchored_from: int) -> Outcome:
    """The rule of the module docstring for one pair and one block at ``height``."""
    if base is None:
        return NeedsRead("unknown")
    seen = base.stamp.block_height
    if seen is None or seen < anchored_from:
        return NeedsRead("unanchored")
    if seen >= height:
        return AlreadyIn()
    amount = base.amount + delta
    if not 0 <= amount <= MAX_AMOUNT:
        return NeedsRead("drift")
    return Applied(amount)


def anchor_height(balances: AddressBalances | None, map_keys: Iterable[str] = ()) -> int | None:
    """The height up to which every balance of the address is exactly known: the
    oldest of its STX read, its last complete listing and its map-token reads (None
    when any of them is missing or was read at no known height)."""
    if balances is None or balances.listing is None:
        return None
    heights = [balances.listing.block_height]
    for key in (STX_ASSET, *map_keys):
        state = balances.tokens.get(key)
        heights.append(None if state is None else state.stamp.block_height)
    known = [h for h in heights if h is not None]
    return min(known) if len(known) == len(heights) else None


def ingest_stamp(block_time: float, height: int, bases: Mapping[str, TokenState | None]) -> Stamp:
    """The stamp of a block's changes to one address: the block's time and height, but
    never older than a read it builds on (a read taken after the block's time that
    did not include it yet, from an API lagging a push source), so that folding by
    stamp keeps the block's result."""
    newest = max((s.stamp.at for s in bases.values() if s is not None), default=block_time)
    return Stamp(max(block_time, newest), height)


def map_touches(
    block: ChainBlock, relevant: Callable[[str, str], bool], map_contracts: Collection[str]
) -> set[tuple[str, str]]:
    """(address, map-token contract) pairs the block may have moved, for which
    ``relevant(address, contract)`` holds. A map-based token leaves no asset event:
    every principal its successful calls and prints name may have moved (the caller,
    the parties of its moves, the principals inside its print values)."""
    touched: set[tuple[str, str]] = set()
    for tx in block.txs:
        if not tx.success:
            continue  # rolled back: nothing moved but the fee
        contracts = {log.contract_id for log in tx.logs if log.contract_id in map_contracts}
        if tx.contract_call in map_contracts:
            contracts.add(tx.contract_call)  # type: ignore[arg-type]
        if not contracts:
            continue
        named = {tx.sender, *_move_parties(tx.moves)}
        for log in tx.logs:
            if log.contract_id in contracts:
                named.update(principals_in_hex(log.value_hex))
        touched.update(
            (who, contract) for contract in contracts for who in named if relevant(who, contract)
        )
    return touched


def _move_parties(moves: Iterable[AssetMove]) -> Iterator[str]:
    for move in moves:
        if move.sender is not None:
            yield move.sender
        if move.recipient is not None:
            yield move.recipient


def principals_in_hex(value_hex: str | None) -> set[str]:
    """Every principal inside a Clarity value (hex); none when it cannot be decoded."""
    if not value_hex:
        return set()
    try:
        value = deserialize(value_hex)
    except BalancesError:
        return set()
    found: set[str] = set()
    stack: list[ClarityValue] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, StandardPrincipal | ContractPrincipal):
            found.add(str(item))
        elif isinstance(item, Tuple):
            stack.extend(item.fields.values())
        elif isinstance(item, List):
            stack.extend(item.items)
        elif isinstance(item, Some | ResponseOk | ResponseErr):
            stack.append(item.value)
    return found
