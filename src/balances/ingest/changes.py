"""What the change feed is told about a block: each amount it moved, with the
transactions that moved it, and each amount a reorg undid (a retraction)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from balances.chain.events import STX_ASSET, BlockRef, ChainBlock
from balances.domain.feed import ChangeDraft
from balances.ingest.window import AppliedBlock
from balances.stores.sharded.journal import Record


def block_label(ref: BlockRef) -> str | None:
    """The hash the feed names a block by (the one the source gave first)."""
    return ref.block_hash or ref.index_hash


def block_drafts(
    block: ChainBlock, records: Iterable[Record], source: str, now: float
) -> list[ChangeDraft]:
    """One draft per amount ``records`` moved at ``block`` (confirmations that moved
    nothing are not changes)."""
    drafts = []
    for record in records:
        for change in record.changes:
            if change.old == change.new:
                continue
            drafts.append(
                ChangeDraft(
                    "change",
                    record.address,
                    change.key,
                    change.kind,
                    change.old,
                    change.new,
                    block.height,
                    block_label(block.ref),
                    source,
                    now,
                    tx_ids_of(block, record.address, change.key),
                )
            )
    return drafts


def tx_ids_of(block: ChainBlock, address: str, key: str) -> tuple[str, ...]:
    """The transactions of ``block`` that moved ``key`` for ``address`` (a map token:
    the calls to its contract)."""
    found: list[str] = []
    for tx in block.txs:
        paid = key == STX_ASSET and tx.fee > 0 and tx.payer == address
        moved = tx.success and any(
            address in (move.sender, move.recipient) and _same_token(move.asset, key)
            for move in tx.moves
        )
        called = tx.contract_call == key and "." in key
        if paid or moved or called:
            found.append(tx.tx_id)
    return tuple(found)


def _same_token(asset: str, key: str) -> bool:
    return asset == key or asset.partition("::")[0] == key


def retraction_drafts(blocks: Sequence[AppliedBlock], source: str, now: float) -> list[ChangeDraft]:
    """The retractions of ``blocks`` (newest first): per block, its changes undone in
    reverse order, each back to the amount before it (None: unknown again)."""
    drafts = []
    for applied in blocks:
        for undo in reversed(applied.undo):
            before = None if undo.before is None else undo.before.amount
            if before == undo.after.amount:
                continue  # a confirmation: it moved nothing
            drafts.append(
                ChangeDraft(
                    "retraction",
                    undo.address,
                    undo.key,
                    undo.kind,
                    undo.after.amount,
                    before,
                    applied.ref.height,
                    block_label(applied.ref),
                    source,
                    now,
                )
            )
    return drafts
