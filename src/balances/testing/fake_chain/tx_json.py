"""Transactions and events in the Stacks API's JSON shapes (v1 ``Transaction``, v3 summaries).

Shapes follow ``reference/stacks-api/openapi.yaml`` (9.0.2): ``TransactionFound`` /
``MempoolTransaction`` of ``/extended/v1/tx/multiple``, the v3 transaction
summaries of ``/extended/v3/blocks/{h}/transactions`` and the principal routes, the
v3 transaction of ``/extended/v3/transactions/{tx_id}``, and both event forms.
Choices the spec leaves open, as the API writes them for Nakamoto blocks:
``microblock_hash`` is ``"0x"`` and ``microblock_sequence`` 2147483647; execution
costs are 0; ``tx_result`` is ``(ok true)`` for success and
``abort_by_post_condition`` and ``(err u1)`` for ``abort_by_response``. A v1 event
writes ``""`` for the missing sender of a mint and recipient of a burn.
Function types use Clarity's syntax (``uint``, ``(optional (buff 34))``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from balances.chain.clarity import (
    Bool,
    ClarityValue,
    ResponseErr,
    ResponseOk,
    UInt,
    to_hex,
    to_repr,
)
from balances.testing.fake_chain.blocks import Block, iso_time
from balances.testing.fake_chain.records import (
    Event,
    Move,
    PrintEvent,
    StxLock,
    Tx,
    TxIntent,
    TxStatus,
)
from balances.testing.fake_chain.txwire import MEMO_LENGTH, payload_offset

if TYPE_CHECKING:
    from balances.testing.fake_chain.drafts import Pending
    from balances.testing.fake_chain.ledger import FakeChain

MICROBLOCK_SEQUENCE_NONE = 2_147_483_647
_COSTS = ("read_count", "read_length", "runtime", "write_count", "write_length")


def result_value(status: TxStatus) -> ClarityValue:
    """The transaction's result: what the node reports as ``raw_result``."""
    return ResponseErr(UInt(1)) if status == "abort_by_response" else ResponseOk(Bool(True))


def clarity_json(value: ClarityValue) -> dict[str, str]:
    return {"hex": to_hex(value), "repr": to_repr(value)}


def block_of(chain: FakeChain, tx: Tx) -> Block:
    found = chain.blocks.by_hash(tx.block_hash)
    assert found is not None  # every mined tx names a block the log knows
    return found


def parent_of(chain: FakeChain, block: Block) -> Block:
    found = chain.blocks.by_hash(block.parent_block_hash) or chain.blocks.at_height(
        block.height - 1
    )
    return found if found is not None else block


def coinbase_data(raw: bytes) -> str:
    start = payload_offset(raw) + 1
    return "0x" + raw[start : start + 32].hex()


def memo_hex(memo: bytes) -> str:
    return "0x" + memo.ljust(MEMO_LENGTH, b"\x00").hex()


# --- events ----------------------------------------------------------------------


def _asset_v3(move: Move) -> dict[str, Any]:
    body: dict[str, Any] = {"type": move.action}
    if move.kind == "ft":
        body["asset_identifier"] = move.asset
    if move.sender is not None:
        body["sender"] = move.sender
    if move.recipient is not None:
        body["recipient"] = move.recipient
    body["amount"] = str(move.amount)
    if move.kind == "stx" and move.action == "transfer":
        body["memo"] = None
    return body


def event_v3(index: int, event: Event) -> dict[str, Any]:
    """One event as ``/extended/v3/transactions/{tx_id}/events`` lists it."""
    if isinstance(event, PrintEvent):
        log = {
            "contract_id": event.contract_id,
            "topic": "print",
            "value": clarity_json(event.value),
        }
        return {"event_index": index, "type": "contract_log", "contract_log": log}
    if isinstance(event, StxLock):
        lock = {
            "amount": str(event.amount),
            "unlock_bitcoin_height": event.unlock_burn_height,
            "address": event.locked_address,
        }
        return {"event_index": index, "type": "stx_lock", "stx_lock": lock}
    kind = "stx_asset" if event.kind == "stx" else "ft_asset"
    return {"event_index": index, "type": kind, kind: _asset_v3(event)}


def events_v3(tx: Tx) -> list[dict[str, Any]]:
    return [event_v3(index, event) for index, event in enumerate(tx.emitted)]


def event_v1(tx_id: str, index: int, event: Event) -> dict[str, Any]:
    """One event in the v1 ``Transaction.events`` shape."""
    base: dict[str, Any] = {"event_index": index}
    if isinstance(event, PrintEvent):
        log = {
            "contract_id": event.contract_id,
            "topic": "print",
            "value": clarity_json(event.value),
        }
        return {**base, "event_type": "smart_contract_log", "tx_id": tx_id, "contract_log": log}
    if isinstance(event, StxLock):
        lock = {
            "locked_amount": str(event.amount),
            "unlock_height": event.unlock_burn_height,
            "locked_address": event.locked_address,
        }
        return {**base, "event_type": "stx_lock", "tx_id": tx_id, "stx_lock_event": lock}
    asset: dict[str, Any] = {"asset_event_type": event.action}
    if event.kind == "ft":
        asset["asset_id"] = event.asset
    asset |= {
        "sender": event.sender or "",
        "recipient": event.recipient or "",
        "amount": str(event.amount),
    }
    kind = "stx_asset" if event.kind == "stx" else "fungible_token_asset"
    return {**base, "event_type": kind, "tx_id": tx_id, "asset": asset}


# --- transactions -----------------------------------------------------------------


def _payload_v3(tx: Tx | TxIntent) -> dict[str, Any]:
    if tx.type == "token_transfer":
        memo = None if not tx.memo else clarity_json_buffer(tx.memo)
        return {
            "token_transfer": {"recipient": tx.recipient, "amount": str(tx.amount), "memo": memo}
        }
    if tx.type == "coinbase":
        return {"coinbase": {"alt_recipient": tx.recipient}}
    return {"contract_call": {"contract_id": tx.contract_id, "function_name": tx.function_name}}


def clarity_json_buffer(memo: bytes) -> dict[str, str]:
    padded = memo.ljust(MEMO_LENGTH, b"\x00")
    return {"hex": "0x" + padded.hex(), "repr": "0x" + padded.hex()}


def _parties_v3(tx: Tx | TxIntent) -> dict[str, Any]:
    sponsor = None if tx.sponsor is None else {"address": tx.sponsor, "nonce": tx.sponsor_nonce}
    return {
        "tx_id": tx.tx_id,
        "sender": {"address": tx.sender, "nonce": tx.nonce},
        "sponsor": sponsor,
        "fee_rate": str(tx.fee),
    }


def summary_v3(chain: FakeChain, tx: Tx) -> dict[str, Any]:
    """A mined transaction as the v3 list routes summarise it."""
    block = block_of(chain, tx)
    return {
        **_parties_v3(tx),
        "block": {
            "height": block.height,
            "hash": block.hash,
            "index_hash": block.index_block_hash,
            "time": block.time,
            "tx_index": tx.tx_index,
        },
        "bitcoin_block": {"height": block.burn_block_height, "time": block.burn_block_time},
        "status": tx.status,
        "type": tx.type,
        **_payload_v3(tx),
    }


def transaction_v3(chain: FakeChain, tx: Tx) -> dict[str, Any]:
    """``GET /extended/v3/transactions/{tx_id}`` for a mined transaction."""
    block = block_of(chain, tx)
    parent = parent_of(chain, block)
    body = summary_v3(chain, tx)
    payload = body.pop(tx.type)
    if tx.type == "coinbase":
        payload = {
            "payload": coinbase_data(tx.raw),
            "alt_recipient": tx.recipient,
            "vrf_proof": None,
        }
    return {
        **body,
        "parent_block": {"hash": parent.hash, "index_hash": parent.index_block_hash},
        "event_count": len(tx.emitted),
        "execution_cost": dict.fromkeys(_COSTS, 0),
        "vm_error": None,
        tx.type: payload,
    }


def mempool_summary_v3(pending: Pending, status: str) -> dict[str, Any]:
    intent = pending.intent
    return {
        **_parties_v3(intent),
        "receipt_time": pending.receipt_time,
        "receipt_block_height": pending.receipt_block_height,
        "status": status,
        "type": intent.type,
        **_payload_v3(intent),
    }


def _common_v1(tx: Tx | TxIntent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tx_id": tx.tx_id,
        "nonce": tx.nonce,
        "fee_rate": str(tx.fee),
        "sender_address": tx.sender,
    }
    if tx.sponsor is not None:
        body["sponsor_nonce"] = tx.sponsor_nonce
    body["sponsored"] = tx.sponsor is not None
    if tx.sponsor is not None:
        body["sponsor_address"] = tx.sponsor
    body["post_condition_mode"] = "deny" if tx.status == "abort_by_post_condition" else "allow"
    body["post_conditions"] = []
    body["anchor_mode"] = "any"
    return body


def _payload_v1(tx: Tx | TxIntent) -> dict[str, Any]:
    if tx.type == "token_transfer":
        transfer = {
            "recipient_address": tx.recipient,
            "amount": str(tx.amount),
            "memo": memo_hex(tx.memo),
        }
        return {"tx_type": "token_transfer", "token_transfer": transfer}
    if tx.type == "coinbase":
        payload = {"data": coinbase_data(tx.raw), "alt_recipient": tx.recipient, "vrf_proof": None}
        return {"tx_type": "coinbase", "coinbase_payload": payload}
    call = {
        "contract_id": tx.contract_id,
        "function_name": tx.function_name,
        "function_signature": function_signature(tx),
        "function_args": [
            {**clarity_json(arg.value), "name": arg.name, "type": arg.type} for arg in tx.args
        ],
    }
    return {"tx_type": "contract_call", "contract_call": call}


def function_signature(tx: Tx | TxIntent) -> str:
    args = " ".join(f"({arg.name} {arg.type})" for arg in tx.args)
    return f"(define-public ({tx.function_name}{' ' if args else ''}{args}))"


def transaction_v1(
    chain: FakeChain, tx: Tx, event_offset: int = 0, event_limit: int = 20
) -> dict[str, Any]:
    """A mined transaction in the v1 ``Transaction`` shape, with its events whose
    ``event_index`` lies in ``[event_offset, event_offset + event_limit)``."""
    block = block_of(chain, tx)
    parent = parent_of(chain, block)
    emitted = tx.emitted
    window = range(event_offset, min(len(emitted), event_offset + event_limit))
    return {
        **_common_v1(tx),
        "block_hash": block.hash,
        "block_height": block.height,
        "block_time": block.time,
        "block_time_iso": iso_time(block.time),
        "burn_block_time": block.burn_block_time,
        "burn_block_height": block.burn_block_height,
        "burn_block_time_iso": iso_time(block.burn_block_time),
        "parent_burn_block_time": parent.burn_block_time,
        "parent_burn_block_time_iso": iso_time(parent.burn_block_time),
        "canonical": chain.blocks.is_canonical(block),
        "tx_index": tx.tx_index,
        "tx_status": tx.status,
        "tx_result": clarity_json(result_value(tx.status)),
        "event_count": len(emitted),
        "parent_block_hash": block.parent_block_hash,
        "is_unanchored": False,
        "microblock_hash": "0x",
        "microblock_sequence": MICROBLOCK_SEQUENCE_NONE,
        "microblock_canonical": True,
        **{f"execution_cost_{name}": 0 for name in _COSTS},
        "vm_error": None,
        "events": [event_v1(tx.tx_id, index, emitted[index]) for index in window],
        **_payload_v1(tx),
    }


def mempool_transaction_v1(pending: Pending, status: str) -> dict[str, Any]:
    """A pending (or dropped) transaction in the v1 ``MempoolTransaction`` shape."""
    return {
        **_common_v1(pending.intent),
        "tx_status": status,
        "replaced_by_tx_id": None,
        "receipt_time": pending.receipt_time,
        "receipt_time_iso": iso_time(pending.receipt_time),
        **_payload_v1(pending.intent),
    }
