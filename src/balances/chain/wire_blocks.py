"""The shapes of the block-following answers: block headers, a block's transactions,
transactions with their events (stacks-api openapi.yaml; PROTOCOLS.md 1.5, 1.6).

- ``/extended/v2/blocks/{h}``: a header with its parent's hashes and ``tx_count``.
- ``/extended/v3/blocks/{h}/transactions``: v3 summaries (no events), cursor paged.
- ``/extended/v1/tx/multiple``: v1 transactions with their events, each truncated to
  the events whose ``event_index`` is in ``[event_offset, event_offset + event_limit)``
  (the window is per transaction, as the API's query is); ``event_count`` says how
  many there are.
- ``/extended/v3/transactions/{tx_id}/events``: every event of one transaction.

v1 events write ``""`` for the missing sender of a mint and recipient of a burn;
v3 events leave them out. Both decode to the same :class:`~balances.chain.events.AssetMove`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from balances.chain.wire import Amount, Cursor, Wire
from balances.chain.wire_history import ClarityHex, TxId


class BlockHeader(Wire):
    canonical: bool = True
    height: int
    hash: str
    block_time: int
    index_block_hash: str
    parent_block_hash: str
    parent_index_block_hash: str
    burn_block_height: int
    tx_count: int = Field(ge=0)


class SummaryBlock(Wire):
    height: int
    hash: str
    index_hash: str
    time: int | float
    tx_index: int


class Party(Wire):
    address: str


class TokenTransferBody(Wire):
    recipient: str
    amount: Amount


class CallBody(Wire):
    contract_id: str
    function_name: str


class BlockTxSummary(Wire):
    """One transaction of a block, v3 summary form."""

    tx_id: TxId
    sender: Party
    sponsor: Party | None = None
    fee_rate: Amount
    block: SummaryBlock
    status: str
    type: str
    token_transfer: TokenTransferBody | None = None
    contract_call: CallBody | None = None


class BlockTxPage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[BlockTxSummary]


# --- v1 transactions with events ----------------------------------------------------


class V1Asset(Wire):
    asset_event_type: str
    asset_id: str | None = None
    sender: str = ""
    recipient: str = ""
    amount: Amount | None = None


class V1Log(Wire):
    contract_id: str
    topic: str
    value: ClarityHex


class V1Lock(Wire):
    locked_amount: Amount
    unlock_height: int
    locked_address: str


class V1Event(Wire):
    event_index: int
    event_type: str
    asset: V1Asset | None = None
    contract_log: V1Log | None = None
    stx_lock_event: V1Lock | None = None


class V1Transaction(Wire):
    tx_id: TxId
    tx_index: int
    tx_status: str
    tx_type: str
    block_hash: str
    block_height: int
    parent_block_hash: str
    canonical: bool = True
    sender_address: str
    sponsored: bool = False
    sponsor_address: str | None = None
    fee_rate: Amount
    event_count: int = Field(ge=0)
    events: list[V1Event]


class V1Found(Wire):
    found: bool
    result: dict[str, Any]


# --- v3 events (one transaction, all pages) -------------------------------------------


class V3StxAsset(Wire):
    type: str
    sender: str | None = None
    recipient: str | None = None
    amount: Amount


class V3FtAsset(Wire):
    type: str
    asset_identifier: str
    sender: str | None = None
    recipient: str | None = None
    amount: Amount


class V3Lock(Wire):
    amount: Amount
    unlock_bitcoin_height: int
    address: str


class V3Event(Wire):
    event_index: int
    type: str
    stx_asset: V3StxAsset | None = None
    ft_asset: V3FtAsset | None = None
    contract_log: V1Log | None = None
    stx_lock: V3Lock | None = None


class V3EventPage(Wire):
    total: int
    limit: int
    cursor: Cursor
    results: list[V3Event]
