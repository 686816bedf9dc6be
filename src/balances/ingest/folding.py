"""Folding one block, as pure steps: which amounts its deltas set and which pairs
must be read instead (:mod:`.rules`), and the journal records its amounts make."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from balances.chain.events import ChainBlock
from balances.domain.current import AddressBalances, AddressUpdate, TokenKindName, merge
from balances.ingest.pair_reads import Pair
from balances.ingest.rules import (
    AlreadyIn,
    Applied,
    NeedsRead,
    base_state,
    fold_delta,
    ingest_stamp,
    token_key_of,
)
from balances.ingest.stats import IngestStats
from balances.ingest.window import AppliedBlock, Undo
from balances.stores.sharded.journal import Record
from balances.stores.sharded.store import confirmations

#: address -> token key -> (amount as of the block, kind)
Amounts = dict[str, dict[str, tuple[int, TokenKindName]]]


def plan_block(
    block: ChainBlock,
    deltas: Mapping[str, Mapping[str, int]],
    touched: set[tuple[str, str]],
    loaded: Mapping[str, AddressBalances | None],
    anchored_from: int,
    stats: IngestStats,
) -> tuple[Amounts, set[Pair]]:
    """The amounts ``block``'s deltas set, and the pairs to read as of it: the map
    tokens it touched, and every pair whose delta cannot be trusted (counted as
    drift in ``stats`` when the delta would leave the amount's range)."""
    addresses = sorted(set(deltas) | {address for address, _ in touched})
    amounts: Amounts = {address: {} for address in addresses}
    reads: set[Pair] = {(address, contract, "map") for address, contract in touched}
    for address, assets in deltas.items():
        balances = loaded.get(address)
        for asset, delta in assets.items():
            key, kind = token_key_of(asset, balances)
            outcome = fold_delta(
                base_state(balances, key, kind), delta, block.height, anchored_from
            )
            if isinstance(outcome, Applied):
                amounts[address][key] = (outcome.amount, kind)
            elif isinstance(outcome, NeedsRead):
                if outcome.reason == "drift":
                    stats.drift_found[kind] += 1
                if "::" not in key:  # a multi-asset contract's token cannot be pinned
                    reads.add((address, key, kind))
            else:
                assert isinstance(outcome, AlreadyIn)
    return amounts, reads


def block_records(
    block: ChainBlock,
    loaded: Mapping[str, AddressBalances | None],
    amounts: Mapping[str, Mapping[str, tuple[int, TokenKindName]]],
    applied: AppliedBlock,
) -> tuple[list[Record], list[str]]:
    """Each address's amounts as of ``block`` merged over what is stored: the records
    to stage, and the addresses whose balances moved. Fills ``applied``'s undo log."""
    records: list[Record] = []
    changed: list[str] = []
    for address, found in amounts.items():
        if not found:
            continue
        current = loaded.get(address)
        bases = {key: base_state(current, key, kind) for key, (_, kind) in found.items()}
        stamp = ingest_stamp(block.time, block.height, bases)
        update = AddressUpdate(address, stamp, dict(found), confirm=True)
        merged = merge(current, update)
        kept = (*merged.changes, *confirmations(update, merged))
        if not kept:
            continue
        records.append(Record(address, kept))
        for change in kept:
            before = None if current is None else current.tokens.get(change.key)
            after = merged.balances.tokens[change.key]
            applied.undo.append(Undo(address, change.key, change.kind, before, after))
        if merged.changes:
            changed.append(address)
    return records, changed


def undone_pairs(blocks: Sequence[AppliedBlock], budget: int) -> list[Pair]:
    """Up to ``budget`` of the pairs undone blocks set, to read again at the fork (a
    multi-asset contract's token cannot be read on its own)."""
    pairs: dict[tuple[str, str], TokenKindName] = {}
    for block in blocks:
        for undo in block.undo:
            if "::" not in undo.key:
                pairs[(undo.address, undo.key)] = undo.kind
    return [(a, k, pairs[(a, k)]) for a, k in sorted(pairs)[:budget]]


def checked_amounts(
    read: Mapping[Pair, int], loaded: Mapping[str, AddressBalances | None], stats: IngestStats
) -> Amounts:
    """The amounts read at a fork point, counting each that differs from what is
    stored as drift found (and repaired, by storing the read)."""
    amounts: Amounts = {}
    for (address, key, kind), amount in read.items():
        state = base_state(loaded.get(address), key, kind)
        if state is None or state.amount != amount:
            stats.drift_found[kind] += 1
            stats.drift_repaired[kind] += 1
        amounts.setdefault(address, {})[key] = (amount, kind)
    return amounts
