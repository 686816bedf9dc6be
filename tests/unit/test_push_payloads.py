"""The stand-in's push payloads (Chainhooks 2.0, event observer): the Chainhook ones valid
against the v2 schema; our decoders read
from them the same moves (and fees) the stand-in's ledger made."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from balances.chain.chainhook import decode_chainhook
from balances.chain.events import STX_ASSET, AssetMove
from balances.chain.observer import decode_dropped, decode_mempool, decode_new_block
from balances.testing import fake_address
from balances.testing.fake_chain.chainhook_payloads import delivery, reorg_delivery
from balances.testing.fake_chain.ledger import FakeChain
from balances.testing.fake_chain.observer_payloads import (
    drop_mempool_tx,
    new_block,
    new_mempool_tx,
)
from balances.testing.fake_chain.records import Move

# The repository's parent holds shared/reference (in CI too); a missing file fails.
SCHEMAS = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "reference"
    / "chainhook"
    / "chainhooks-v2-client-2.1.1-schemas.json"
)


def _expected(chain: FakeChain, block: object) -> list[AssetMove]:
    found = []
    for tx in chain.block_transactions(block):  # type: ignore[arg-type]
        for event in tx.emitted:
            if isinstance(event, Move):
                asset = STX_ASSET if event.kind == "stx" else event.asset
                found.append(AssetMove(asset, event.sender, event.recipient, event.amount))
    return found


def _decoded_moves(tx_moves: tuple[AssetMove, ...]) -> list[AssetMove]:
    """A transfer decodes as a debit leg and a credit leg: pair them back."""
    out: list[AssetMove] = []
    pending: AssetMove | None = None
    for move in tx_moves:
        if pending is not None and move.sender is None and move.amount == pending.amount:
            out.append(AssetMove(move.asset, pending.sender, move.recipient, move.amount))
            pending = None
        elif move.recipient is None and move.sender is not None:
            pending = move
        else:
            out.append(move)
    if pending is not None:
        out.append(pending)
    return out


def _chain() -> FakeChain:
    chain = FakeChain()
    alice, bob = fake_address("alice"), fake_address("bob")
    chain.mint("stx", alice, 5_000_000)
    chain.transfer("stx", alice, bob, 1_234, fee=10)
    return chain


def test_delivery_matches_v2_schema_and_decodes_to_the_ledger_moves() -> None:
    chain = _chain()
    blocks = tuple(chain.blocks.at_height(h) for h in range(1000, chain.blocks.tip.height + 1))
    mined = tuple(b for b in blocks if b is not None and chain.block_transactions(b))
    payload = delivery(chain, mined)
    schema = json.loads(SCHEMAS.read_text())["ChainhookEventSchema"]
    jsonschema.validate(json.loads(json.dumps(payload)), schema)
    decoded = decode_chainhook(payload)
    assert [b.ref.height for b in decoded.apply] == [b.height for b in mined]
    for block, got in zip(mined, decoded.apply, strict=True):
        moves = [m for tx in got.txs for m in _decoded_moves(tx.moves)]
        assert moves == _expected(chain, block)


def test_reorg_rolls_back_newest_first_then_applies_the_fork() -> None:
    chain = _chain()
    for _ in range(3):
        chain.mine_block()
    reorg = chain.reorg(3)
    decoded = decode_chainhook(reorg_delivery(chain, reorg))
    heights = [b.ref.height for b in decoded.rollback]
    assert heights == sorted((b.height for b in reorg.orphaned), reverse=True)
    assert [b.ref.height for b in decoded.apply] == [b.height for b in reorg.applied]


def test_observer_new_block_decodes_to_the_ledger_moves_and_fees() -> None:
    chain = _chain()
    for height in range(1000, chain.blocks.tip.height + 1):
        block = chain.blocks.at_height(height)
        if block is None or not chain.block_transactions(block):
            continue
        decoded = decode_new_block(new_block(chain, block))
        assert decoded.ref.index_hash == block.index_block_hash
        assert [m for tx in decoded.txs for m in tx.moves] == _expected(chain, block)
        fees = [(tx.payer, tx.fee) for tx in chain.block_transactions(block)]
        assert [(tx.payer, tx.fee) for tx in decoded.txs] == fees


def test_observer_mempool_bodies_decode_to_the_pending_ids() -> None:
    chain = _chain()
    with chain.pending():
        chain.transfer("stx", fake_address("alice"), fake_address("carol"), 77)
    pending = chain.mempool
    decoded = decode_mempool(new_mempool_tx(pending))
    assert [p.tx_id for p in decoded] == [entry.intent.tx_id for entry in pending]
    dropped = decode_dropped(drop_mempool_tx([entry.intent.tx_id for entry in pending]))
    assert dropped == [entry.intent.tx_id for entry in pending]
