"""A stacks-node's event observer deliveries decoded (the node POSTs them to us).

The node (``[[events_observer]]`` in its config) sends, in order:

- ``POST /new_block``: ``{block_hash, block_height, block_time?, burn_block_time,
  index_block_hash, parent_block_hash, parent_index_block_hash, transactions:
  [{txid, tx_index, status, raw_tx, ...}], events: [{txid, event_index, committed,
  type, <type>: {...}}], matured_miner_rewards: [...]}``. Events are grouped by
  ``txid``; an event with ``committed: false`` was rolled back and moves nothing.
  Fees and payers are read from ``raw_tx`` (:mod:`balances.chain.rawtx`).
  ``block_time`` exists since Nakamoto; older nodes give only ``burn_block_time``.
  Matured miner rewards (coinbase plus fees) credit their recipients.
- ``POST /new_mempool_tx``: a JSON array of raw transactions (hex).
- ``POST /drop_mempool_tx``: ``{dropped_txids: [...], reason}``.
- ``POST /new_burn_block``: a Bitcoin block (no balance effect on Stacks tokens).

A node announces a fork only by a ``/new_block`` whose parent is not the last one
it sent; the ingestor detects that from the parent hashes.
(Shapes: the stacks-blockchain-api's ``core-node-message.ts``, PROTOCOLS.md 5.1.)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from balances.chain.chainhook import node_event
from balances.chain.events import (
    STX_ASSET,
    AssetMove,
    BlockRef,
    ChainBlock,
    ChainTx,
    ContractLog,
    MempoolTx,
    StxLock,
)
from balances.chain.rawtx import parse_raw_tx
from balances.errors import InvalidDeliveryError

SUCCESS = "success"
#: The observer's event types -> the node event names :func:`node_event` reads.
_EVENT_NAMES = {
    "stx_transfer_event": "STXTransferEvent",
    "stx_mint_event": "STXMintEvent",
    "stx_burn_event": "STXBurnEvent",
    "stx_lock_event": "STXLockEvent",
    "ft_transfer_event": "FTTransferEvent",
    "ft_mint_event": "FTMintEvent",
    "ft_burn_event": "FTBurnEvent",
    "contract_event": "SmartContractEvent",
}
_REWARD_FIELDS = (
    "coinbase_amount",
    "tx_fees_anchored",
    "tx_fees_streamed_confirmed",
    "tx_fees_streamed_produced",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _NodeTx(_Model):
    txid: str
    tx_index: int
    status: str
    raw_tx: str


class _NodeEvent(_Model):
    model_config = ConfigDict(extra="allow", frozen=True)
    txid: str
    event_index: int
    committed: bool = True
    type: str


class _NewBlock(_Model):
    block_hash: str
    block_height: int
    block_time: int | None = None
    burn_block_time: int
    index_block_hash: str
    parent_block_hash: str
    parent_index_block_hash: str
    transactions: list[_NodeTx]
    events: list[_NodeEvent]
    matured_miner_rewards: list[dict[str, Any]] = []


def decode_new_block(payload: Any) -> ChainBlock:
    """A ``/new_block`` body as a block; InvalidDeliveryError when it is not one."""
    try:
        block = _NewBlock.model_validate(payload)
        return _block(block)
    except PydanticValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise InvalidDeliveryError(
            f"not a /new_block payload: {where}: {problem['msg']}"
        ) from error
    except ValueError as error:
        raise InvalidDeliveryError(f"not a /new_block payload: {error}") from error


def _block(block: _NewBlock) -> ChainBlock:
    by_tx: defaultdict[str, list[_NodeEvent]] = defaultdict(list)
    for event in block.events:
        by_tx[event.txid.lower()].append(event)
    txs = tuple(
        _tx(tx, by_tx.get(tx.txid.lower(), []))
        for tx in sorted(block.transactions, key=lambda t: t.tx_index)
    )
    own = BlockRef(block.block_height, block.block_hash, block.index_block_hash)
    parent = BlockRef(
        block.block_height - 1, block.parent_block_hash, block.parent_index_block_hash
    )
    time = block.block_time if block.block_time is not None else block.burn_block_time
    rewards = tuple(_reward(entry) for entry in block.matured_miner_rewards)
    return ChainBlock(own, parent, float(time), txs, tuple(r for r in rewards if r is not None))


def _tx(tx: _NodeTx, events: list[_NodeEvent]) -> ChainTx:
    raw = parse_raw_tx(tx.raw_tx)
    success = tx.status == SUCCESS
    moves: list[AssetMove] = []
    logs: list[ContractLog] = []
    locks: list[StxLock] = []
    for event in sorted(events, key=lambda e: e.event_index):
        if not event.committed or not success:
            continue
        name = _EVENT_NAMES.get(event.type)
        if name is None:
            continue  # NFT events and kinds that do not move fungible balances
        decoded = node_event(name, (event.model_extra or {}).get(event.type))
        if isinstance(decoded, AssetMove):
            moves.append(decoded)
        elif isinstance(decoded, ContractLog):
            logs.append(decoded)
        elif isinstance(decoded, StxLock):
            locks.append(decoded)
    return ChainTx(
        tx_id=tx.txid.lower(),
        index=tx.tx_index,
        sender=raw.sender,
        success=success,
        fee=raw.fee,
        payer=raw.payer,
        contract_call=raw.contract_call,
        moves=tuple(moves),
        logs=tuple(logs),
        locks=tuple(locks),
    )


def _reward(entry: dict[str, Any]) -> AssetMove | None:
    recipient = entry.get("recipient")
    if not isinstance(recipient, str) or not recipient:
        raise ValueError("a matured miner reward without a recipient")
    total = 0
    for field in _REWARD_FIELDS:
        value = entry.get(field, "0")
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValueError(f"matured miner reward {field} must be a decimal string")
        total += int(value)
    return AssetMove(STX_ASSET, None, recipient, total) if total else None


def decode_mempool(payload: Any) -> list[MempoolTx]:
    """A ``/new_mempool_tx`` body (raw transactions) as pending effects."""
    if not isinstance(payload, list) or not all(isinstance(item, str) for item in payload):
        raise InvalidDeliveryError("a /new_mempool_tx body is a JSON array of raw transactions")
    pending = []
    for raw_hex in payload:
        raw = parse_raw_tx(raw_hex)
        pending.append(MempoolTx(_tx_id(raw_hex), raw.moves, raw.fee, raw.payer))
    return pending


def decode_dropped(payload: Any) -> list[str]:
    """The transaction ids of a ``/drop_mempool_tx`` body."""
    ids = payload.get("dropped_txids") if isinstance(payload, dict) else None
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        raise InvalidDeliveryError("a /drop_mempool_tx body is {dropped_txids: [...], reason}")
    return [item.lower() if item.startswith("0x") else "0x" + item.lower() for item in ids]


def _tx_id(raw_hex: str) -> str:
    """A transaction's id: the SHA-512/256 of its serialization (SIP-005)."""
    text = raw_hex[2:] if raw_hex[:2] in ("0x", "0X") else raw_hex
    return "0x" + hashlib.new("sha512_256", bytes.fromhex(text)).hexdigest()
