"""FakeChain blocks and mempool as a stacks-node's event-observer POST bodies.

Shapes as balances.chain.observer documents them (the stacks-blockchain-api's
``core-node-message.ts``, PROTOCOLS.md 5.1): ``/new_block`` carries each
transaction's ``raw_tx`` (fee and payer are read from it) and the events grouped
by ``txid``; ``/new_mempool_tx`` is an array of raw transactions; and
``/drop_mempool_tx`` is ``{dropped_txids, reason}``. A node has no rollback
message: after a reorg it sends the new fork's blocks, whose parent is not the
last block it sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from balances.testing.fake_chain.records import Move, PrintEvent, StxLock, Tx
from balances.testing.fake_chain.tx_json import clarity_json, memo_hex, result_value

if TYPE_CHECKING:
    from collections.abc import Iterable

    from balances.testing.fake_chain.blocks import Block
    from balances.testing.fake_chain.drafts import Pending
    from balances.testing.fake_chain.ledger import FakeChain


def new_block(chain: FakeChain, block: Block) -> dict[str, Any]:
    txs = chain.block_transactions(block)
    events = [
        _event(tx.tx_id, tx, index, event) for tx in txs for index, event in enumerate(tx.emitted)
    ]
    return {
        "block_hash": block.hash,
        "block_height": block.height,
        "block_time": block.time,
        "burn_block_time": block.burn_block_time,
        "burn_block_hash": block.burn_block_hash,
        "burn_block_height": block.burn_block_height,
        "index_block_hash": block.index_block_hash,
        "parent_block_hash": block.parent_block_hash,
        "parent_index_block_hash": block.parent_index_block_hash,
        "miner_txid": block.miner_txid,
        "transactions": [_tx(tx) for tx in txs],
        "events": events,
        "matured_miner_rewards": [],
    }


def new_burn_block(block: Block) -> dict[str, Any]:
    return {
        "burn_block_hash": block.burn_block_hash,
        "burn_block_height": block.burn_block_height,
        "reward_recipients": [],
        "reward_slot_holders": [],
        "burn_amount": 0,
    }


def new_mempool_tx(pending: Iterable[Pending]) -> list[str]:
    return ["0x" + entry.intent.raw.hex() for entry in pending]


def drop_mempool_tx(tx_ids: Iterable[str], reason: str = "ReplaceByFee") -> dict[str, Any]:
    return {"dropped_txids": list(tx_ids), "reason": reason}


def _tx(tx: Tx) -> dict[str, Any]:
    return {
        "txid": tx.tx_id,
        "tx_index": tx.tx_index,
        "status": tx.status,
        "raw_result": clarity_json(result_value(tx.status))["hex"],
        "raw_tx": "0x" + tx.raw.hex(),
    }


def _event(tx_id: str, tx: Tx, index: int, event: Move | PrintEvent | StxLock) -> dict[str, Any]:
    base: dict[str, Any] = {"txid": tx_id, "event_index": index, "committed": True}
    if isinstance(event, PrintEvent):
        body = {
            "contract_identifier": event.contract_id,
            "topic": "print",
            "raw_value": clarity_json(event.value)["hex"],
        }
        return {**base, "type": "contract_event", "contract_event": body}
    if isinstance(event, StxLock):
        lock = {
            "locked_amount": str(event.amount),
            "unlock_height": str(event.unlock_burn_height),
            "locked_address": event.locked_address,
            "contract_identifier": event.contract_id,
        }
        return {**base, "type": "stx_lock_event", "stx_lock_event": lock}
    kind = f"{'stx' if event.kind == 'stx' else 'ft'}_{event.action}_event"
    data: dict[str, Any] = {"amount": str(event.amount)}
    if event.kind != "stx":
        data["asset_identifier"] = event.asset
    if event.sender is not None:
        data["sender"] = event.sender
    if event.recipient is not None:
        data["recipient"] = event.recipient
    if kind == "stx_transfer_event":
        data["memo"] = memo_hex(tx.memo) if tx.memo else ""
    return {**base, "type": kind, kind: data}
