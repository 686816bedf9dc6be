"""Chainhook deliveries decoded into blocks (PROTOCOLS.md 5; reference/chainhook/).

Two payloads are accepted at one route:

- **Chainhooks 2.0** (hosted): ``{event: {chain, network, apply, rollback},
  chainhook: {uuid, name}}``. A transaction's ``metadata`` has its status, fee
  (``fee_rate``) and payer (``sponsor_address`` or ``sender_address``); its
  ``operations`` list the balance movements: ``token_transfer`` legs (one per
  account: the schema leaves the sign unstated, so we take the Rosetta
  convention: a negative ``amount.value`` debits the account, a positive one
  credits it), ``token_mint`` (credit), ``token_burn`` (debit), ``contract_log``
  (a print: its value hex), ``contract_call``, ``stx_lock``. ``fee`` operations
  are not folded: the metadata's fee is the same amount, counted once.
  STX is the currency with no ``asset_identifier``; ``token_type: nft`` is skipped.
- **Chainhook v1** (self-hosted): ``{apply, rollback, chainhook}``, with each
  transaction's node events under ``metadata.receipt.events`` (``STXTransferEvent``,
  ``FTMintEvent``, ``SmartContractEvent`` ...), which are decoded instead of the
  Rosetta operations.

Both give ``rollback`` (undo first, newest first as delivered) and ``apply``.
A block identifier's hash is taken as the index block hash, as Chainhook uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from balances.chain.events import (
    STX_ASSET,
    AssetMove,
    BlockRef,
    ChainBlock,
    ChainTx,
    ContractLog,
    StxLock,
)
from balances.domain import MAX_AMOUNT
from balances.errors import InvalidDeliveryError

SUCCESS = "success"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one push delivery asks: undo ``rollback`` (in order), then apply ``apply``."""

    apply: tuple[ChainBlock, ...]
    rollback: tuple[ChainBlock, ...] = ()
    network: str | None = None


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Ident(_Model):
    index: int
    hash: str


class _Account(_Model):
    address: str


class _CurrencyMeta(_Model):
    asset_identifier: str | None = None
    token_type: str = "ft"


class _Currency(_Model):
    symbol: str = ""
    metadata: _CurrencyMeta | None = None


class _Amount(_Model):
    value: str | int
    currency: _Currency


class _Operation(_Model):
    type: str
    account: _Account | None = None
    amount: _Amount | None = None
    metadata: dict[str, Any] | None = None


class _Position(_Model):
    index: int


class _V2TxMeta(_Model):
    status: str
    fee_rate: str | int = "0"
    sender_address: str
    sponsor_address: str | None = None
    position: _Position


class _TxIdent(_Model):
    hash: str


class _V2Tx(_Model):
    transaction_identifier: _TxIdent
    operations: list[_Operation]
    metadata: _V2TxMeta


class _V2Block(_Model):
    block_identifier: _Ident
    parent_block_identifier: _Ident
    timestamp: int | float
    transactions: list[_V2Tx]


class _V2Event(_Model):
    chain: str
    network: str
    apply: list[_V2Block]
    rollback: list[_V2Block]


class _V2Payload(_Model):
    event: _V2Event


class _V1Receipt(_Model):
    events: list[dict[str, Any]]


class _V1TxMeta(_Model):
    success: bool
    fee: int | str = 0
    sender: str
    sponsor: str | None = None
    position: _Position
    receipt: _V1Receipt
    kind: dict[str, Any] | None = None


class _V1Tx(_Model):
    transaction_identifier: _TxIdent
    metadata: _V1TxMeta


class _V1Block(_Model):
    block_identifier: _Ident
    parent_block_identifier: _Ident
    timestamp: int | float
    transactions: list[_V1Tx]


class _V1Payload(_Model):
    apply: list[_V1Block]
    rollback: list[_V1Block] = []


def decode_chainhook(payload: Any) -> Delivery:
    """A Chainhook delivery (v2 or v1) as blocks; InvalidDeliveryError if it is neither."""
    if not isinstance(payload, dict):
        raise InvalidDeliveryError("a Chainhook delivery is a JSON object")
    try:
        if "event" in payload:
            v2 = _V2Payload.model_validate(payload)
            if v2.event.chain != "stacks":
                raise InvalidDeliveryError(f"a {v2.event.chain[:20]!r} delivery, not stacks")
            return Delivery(
                tuple(_v2_block(b) for b in v2.event.apply),
                tuple(_v2_block(b) for b in v2.event.rollback),
                v2.event.network,
            )
        v1 = _V1Payload.model_validate(payload)
        return Delivery(
            tuple(_v1_block(b) for b in v1.apply), tuple(_v1_block(b) for b in v1.rollback)
        )
    except PydanticValidationError as error:
        raise InvalidDeliveryError(f"not a Chainhook delivery: {_first(error)}") from error
    except ValueError as error:  # amounts and principals that cannot be
        raise InvalidDeliveryError(f"not a Chainhook delivery: {error}") from error


def _first(error: PydanticValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "body"
    return f"{where}: {problem['msg']}"


def _refs(block: _V2Block | _V1Block) -> tuple[BlockRef, BlockRef]:
    own = BlockRef(block.block_identifier.index, index_hash=block.block_identifier.hash)
    parent = block.parent_block_identifier
    return own, BlockRef(parent.index, index_hash=parent.hash)


def _v2_block(block: _V2Block) -> ChainBlock:
    own, parent = _refs(block)
    txs = tuple(sorted((_v2_tx(tx) for tx in block.transactions), key=lambda t: t.index))
    return ChainBlock(own, parent, float(block.timestamp), txs)


def _v2_tx(tx: _V2Tx) -> ChainTx:
    meta = tx.metadata
    success = meta.status == SUCCESS
    moves: list[AssetMove] = []
    logs: list[ContractLog] = []
    locks: list[StxLock] = []
    call: str | None = None
    for op in tx.operations:
        if op.type in ("token_transfer", "token_mint", "token_burn"):
            move = _v2_move(op)
            if move is not None:
                moves.append(move)
        elif op.type == "contract_log" and op.metadata is not None:
            logs.append(_v2_log(op.metadata))
        elif op.type == "contract_call" and op.metadata is not None:
            call = str(op.metadata.get("contract_identifier") or "") or None
        elif op.type == "stx_lock" and op.metadata is not None and op.amount is not None:
            amount = abs(_signed(op.amount.value))
            locks.append(StxLock(str(op.metadata["locked_address"]), amount, 0))
    payer = meta.sponsor_address or meta.sender_address
    return ChainTx(
        tx_id=tx.transaction_identifier.hash.lower(),
        index=meta.position.index,
        sender=meta.sender_address,
        success=success,
        fee=_unsigned(meta.fee_rate),
        payer=payer,
        contract_call=call,
        moves=tuple(moves) if success else (),
        logs=tuple(logs) if success else (),
        locks=tuple(locks) if success else (),
    )


def _v2_move(op: _Operation) -> AssetMove | None:
    if op.amount is None or op.account is None:
        raise ValueError(f"a {op.type} operation without an account and an amount")
    meta = op.amount.currency.metadata
    if meta is not None and meta.token_type == "nft":
        return None
    asset = STX_ASSET if meta is None or meta.asset_identifier is None else meta.asset_identifier
    value = _signed(op.amount.value)
    who = op.account.address
    debit = op.type == "token_burn" or (op.type == "token_transfer" and value < 0)
    if debit:
        return AssetMove(asset, who, None, abs(value))
    return AssetMove(asset, None, who, abs(value))


def _v2_log(meta: dict[str, Any]) -> ContractLog:
    value = meta.get("value")
    hex_value = value.get("hex") if isinstance(value, dict) else value
    return ContractLog(
        str(meta["contract_identifier"]),
        str(meta.get("topic", "print")),
        hex_value if isinstance(hex_value, str) else None,
    )


def _v1_block(block: _V1Block) -> ChainBlock:
    own, parent = _refs(block)
    txs = tuple(sorted((_v1_tx(tx) for tx in block.transactions), key=lambda t: t.index))
    return ChainBlock(own, parent, float(block.timestamp), txs)


def _v1_tx(tx: _V1Tx) -> ChainTx:
    meta = tx.metadata
    moves: list[AssetMove] = []
    logs: list[ContractLog] = []
    locks: list[StxLock] = []
    for event in meta.receipt.events if meta.success else ():
        decoded = node_event(event.get("type"), event.get("data"))
        if isinstance(decoded, AssetMove):
            moves.append(decoded)
        elif isinstance(decoded, ContractLog):
            logs.append(decoded)
        elif isinstance(decoded, StxLock):
            locks.append(decoded)
    kind = meta.kind or {}
    data = kind.get("data")
    call = None
    if kind.get("type") == "ContractCall" and isinstance(data, dict):
        call = data.get("contract_identifier")
    return ChainTx(
        tx_id=tx.transaction_identifier.hash.lower(),
        index=meta.position.index,
        sender=meta.sender,
        success=meta.success,
        fee=_unsigned(meta.fee),
        payer=meta.sponsor or meta.sender,
        contract_call=call if isinstance(call, str) else None,
        moves=tuple(moves),
        logs=tuple(logs),
        locks=tuple(locks),
    )


#: Chainhook v1 receipt event types -> (asset kind, action); the node observer's
#: snake_case names map to the same (balances.chain.observer).
V1_EVENT_KINDS: dict[str, tuple[str, str]] = {
    "STXTransferEvent": ("stx", "transfer"),
    "STXMintEvent": ("stx", "mint"),
    "STXBurnEvent": ("stx", "burn"),
    "FTTransferEvent": ("ft", "transfer"),
    "FTMintEvent": ("ft", "mint"),
    "FTBurnEvent": ("ft", "burn"),
}


def node_event(kind: Any, data: Any) -> AssetMove | ContractLog | StxLock | None:
    """One node event (Chainhook v1 naming) decoded; NFT events give None."""
    if not isinstance(data, dict):
        raise ValueError(f"a {kind!r} event without its data object")
    if kind in V1_EVENT_KINDS:
        family, action = V1_EVENT_KINDS[kind]
        asset = STX_ASSET if family == "stx" else _text(data, "asset_identifier")
        sender = data.get("sender") if action != "mint" else None
        recipient = data.get("recipient") if action != "burn" else None
        return AssetMove(
            asset, _principal(sender), _principal(recipient), _unsigned(data.get("amount"))
        )
    if kind == "SmartContractEvent":
        raw = data.get("raw_value")
        return ContractLog(
            _text(data, "contract_identifier"),
            str(data.get("topic", "print")),
            raw if isinstance(raw, str) else None,
        )
    if kind == "STXLockEvent":
        return StxLock(
            _text(data, "locked_address"),
            _unsigned(data.get("locked_amount")),
            int(_unsigned(data.get("unlock_height", 0))),
        )
    return None


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string")
    return value


def _principal(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"a principal must be a string, got {type(value).__name__}")
    return value


def _signed(value: Any) -> int:
    """An amount as the payload writes it: a decimal string (v2) or a JSON number."""
    if isinstance(value, bool):
        raise ValueError("an amount is not a boolean")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
        amount = int(value)
    else:
        raise ValueError(f"{str(value)[:40]!r} is not an integer amount")
    if abs(amount) > MAX_AMOUNT:
        raise ValueError(f"{str(value)[:40]} is outside the u128 range")
    return amount


def _unsigned(value: Any) -> int:
    amount = _signed(value)
    if amount < 0:
        raise ValueError(f"{amount} is negative where only an unsigned amount is valid")
    return amount
