"""FakeChain blocks as Chainhooks 2.0 deliveries (reference/chainhook/ v2 schemas).

Balance movements are Rosetta-style operations: a transfer is two
``token_transfer`` legs, the sender's value negative and the recipient's positive
(the convention balances.chain.chainhook decodes); STX is the currency whose
``asset_identifier`` is null. A block identifier's hash is the index block hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from balances.testing.fake_chain.records import Move, PrintEvent, StxLock, Tx
from balances.testing.fake_chain.tx_json import clarity_json, result_value

if TYPE_CHECKING:
    from balances.testing.fake_chain.blocks import Block
    from balances.testing.fake_chain.ledger import FakeChain
    from balances.testing.fake_chain.reorg import Reorg

_CHAINHOOK = {"uuid": "00000000-0000-4000-8000-00000000f00d", "name": "balances-stand-in"}


def delivery(
    chain: FakeChain,
    apply: tuple[Block, ...],
    rollback: tuple[Block, ...] = (),
    network: str = "mainnet",
) -> dict[str, Any]:
    """One delivery: ``rollback`` newest first (as Chainhook sends it), then ``apply``."""
    undo = sorted(rollback, key=lambda b: b.height, reverse=True)
    event = {
        "chain": "stacks",
        "network": network,
        "apply": [block_json(chain, block) for block in apply],
        "rollback": [block_json(chain, block) for block in undo],
    }
    return {"event": event, "chainhook": dict(_CHAINHOOK)}


def reorg_delivery(chain: FakeChain, reorg: Reorg, network: str = "mainnet") -> dict[str, Any]:
    return delivery(chain, reorg.applied, reorg.orphaned, network)


def block_json(chain: FakeChain, block: Block) -> dict[str, Any]:
    return {
        "block_identifier": {"index": block.height, "hash": block.index_block_hash},
        "parent_block_identifier": {
            "index": block.height - 1,
            "hash": block.parent_index_block_hash,
        },
        "timestamp": block.time,
        "transactions": [tx_json(tx) for tx in chain.block_transactions(block)],
    }


def tx_json(tx: Tx) -> dict[str, Any]:
    operations: list[dict[str, Any]] = []
    for event in tx.emitted:
        operations.extend(_operations(event))
    for index, operation in enumerate(operations):
        operation["operation_identifier"] = {"index": index}
        operation["status"] = tx.status
    return {
        "transaction_identifier": {"hash": tx.tx_id},
        "operations": operations,
        "metadata": _metadata(tx),
    }


def _metadata(tx: Tx) -> dict[str, Any]:
    return {
        "canonical": True,
        "microblock_canonical": True,
        "execution_cost": {
            "read_count": 0,
            "read_length": 0,
            "runtime": 0,
            "write_count": 0,
            "write_length": 0,
        },
        "fee_rate": str(tx.fee),
        "nonce": tx.nonce,
        "type": tx.type,
        "position": {"index": tx.tx_index, "microblock_identifier": None},
        "result": clarity_json(result_value(tx.status)),
        "sender_address": tx.sender,
        "sponsor_address": tx.sponsor,
        "sponsored": tx.sponsor is not None,
        "status": tx.status,
        "vm_error": None,
    }


def _amount(move: Move, value: int) -> dict[str, Any]:
    if move.kind == "stx":
        currency: dict[str, Any] = {"decimals": 6, "symbol": "STX"}
    else:
        meta = {"asset_identifier": move.asset, "token_type": "ft"}
        currency = {"decimals": 0, "symbol": move.asset.rsplit("::", 1)[-1], "metadata": meta}
    return {"value": str(value), "currency": currency}


def _operations(event: Move | PrintEvent | StxLock) -> list[dict[str, Any]]:
    if isinstance(event, PrintEvent):
        meta = {
            "contract_identifier": event.contract_id,
            "topic": "print",
            "value": clarity_json(event.value),
        }
        return [{"type": "contract_log", "metadata": meta}]
    if isinstance(event, StxLock):
        meta_lock = {
            "unlock_height": event.unlock_burn_height,
            "locked_address": event.locked_address,
            "contract_name": event.contract_id.split(".", 1)[-1],
        }
        return [
            {
                "type": "stx_lock",
                "account": {"address": event.locked_address},
                "amount": _stx_amount(event.amount),
                "metadata": meta_lock,
            }
        ]
    return _move_operations(event)


def _stx_amount(amount: int) -> dict[str, Any]:
    return {"value": str(amount), "currency": {"decimals": 6, "symbol": "STX"}}


def _move_operations(move: Move) -> list[dict[str, Any]]:
    if move.sender is None:
        assert move.recipient is not None
        return [_leg("token_mint", move, move.recipient, move.amount)]
    if move.recipient is None:
        return [_leg("token_burn", move, move.sender, move.amount)]
    return [
        _leg("token_transfer", move, move.sender, -move.amount),
        _leg("token_transfer", move, move.recipient, move.amount),
    ]


def _leg(kind: str, move: Move, address: str, value: int) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "type": kind,
        "account": {"address": address},
        "amount": _amount(move, value),
    }
    if kind == "token_transfer":
        operation["metadata"] = {"memo": None}
    return operation
