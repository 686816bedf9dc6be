"""Following the chain block by block through the Stacks API (the *pull* source's reads).

A block costs, at the API's page sizes: its transactions (one request per 50,
v3 summaries, no events), plus the events of the transactions a summary cannot
describe (contract calls and deployments) from ``/extended/v1/tx/multiple``, 50
transactions a request, each carrying its first 100 events; a transaction with
more (``event_count``) is completed from the v3 per-transaction event route. An
STX transfer's summary says everything (amount, recipient, fee, sponsor), and a
failed transaction moved nothing but its fee, so neither needs its events.

:class:`BlockFeedMixin` adds the reads to :class:`~balances.chain.client.StacksClient`;
the functions below turn the answers into :mod:`balances.chain.events` types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from balances.chain import wire
from balances.chain.events import STX_ASSET, AssetMove, BlockRef, ChainTx, ContractLog, StxLock
from balances.chain.routes import BLOCK, BLOCK_TXS, LATEST_BLOCK, TX_EVENTS, TX_MULTIPLE
from balances.chain.transport import ErrorFactory, QueryValue, Transport
from balances.chain.wire_blocks import (
    BlockHeader,
    BlockTxPage,
    BlockTxSummary,
    V1Event,
    V1Found,
    V1Transaction,
    V3Event,
    V3EventPage,
)
from balances.errors import MalformedResponseError, NotFoundError

#: The API's page sizes: block transactions 50, events per transaction 100.
BLOCK_TX_LIMIT = 50
EVENT_LIMIT = 100
#: Transaction ids per ``/extended/v1/tx/multiple`` request: a request line of
#: about 7.4 KB, inside the 8 KB that common proxies (nginx's default) accept.
MULTIPLE_IDS = 100
SUCCESS = "success"
#: Transaction types whose effect only their events tell.
EVENTFUL_TYPES = frozenset({"contract_call", "smart_contract"})


def needs_events(summary: BlockTxSummary) -> bool:
    return summary.status == SUCCESS and summary.type in EVENTFUL_TYPES


class BlockFeedMixin:
    """Block reads of :class:`~balances.chain.client.StacksClient`."""

    _transport: Transport

    async def get_block_header(self, height_or_hash: int | str) -> BlockHeader:
        """A block's header with its parent's hashes; NotFoundError when absent."""
        text = str(height_or_hash)
        request = self._transport.request(BLOCK, {"height_or_hash": text})
        return await self._transport.fetch(
            request, partial(wire.parse, BlockHeader, route=BLOCK), errors=_missing(text)
        )

    async def get_latest_header(self) -> BlockHeader:
        request = self._transport.request(LATEST_BLOCK, {})
        return await self._transport.fetch(
            request, partial(wire.parse, BlockHeader, route=LATEST_BLOCK)
        )

    async def get_block_transactions(self, height_or_hash: int | str) -> list[BlockTxSummary]:
        """Every transaction of a block, in block order; NotFoundError when the block is
        not (yet) known to the API."""
        text = str(height_or_hash)
        found: list[BlockTxSummary] = []
        cursor: str | None = None
        for _ in range(10_000):
            query: dict[str, str | int] = {"limit": BLOCK_TX_LIMIT}
            if cursor is not None:
                query["cursor"] = cursor
            request = self._transport.request(BLOCK_TXS, {"height_or_hash": text}, query)
            page = await self._transport.fetch(
                request, partial(wire.parse, BlockTxPage, route=BLOCK_TXS), errors=_missing(text)
            )
            found += page.results
            following = page.cursor.next
            if following is None or not page.results or len(found) >= page.total:
                return sorted(found, key=lambda tx: tx.block.tx_index)
            if following == cursor:
                break
            cursor = following
        raise MalformedResponseError(f"{BLOCK_TXS} for {text}: the cursor chain does not end")

    async def get_transactions_with_events(
        self, tx_ids: Sequence[str]
    ) -> dict[str, tuple[V1Transaction, list[V1Event | V3Event]]]:
        """Each transaction (v1 form) with *every* one of its events."""
        found: dict[str, tuple[V1Transaction, list[V1Event | V3Event]]] = {}
        ids = list(dict.fromkeys(tx_ids))
        for start in range(0, len(ids), MULTIPLE_IDS):
            chunk = ids[start : start + MULTIPLE_IDS]
            for tx in await self._multiple(chunk):
                events: list[V1Event | V3Event] = list(tx.events)
                if len(events) < tx.event_count:
                    events = list(await self._all_events(tx.tx_id))
                found[tx.tx_id] = (tx, events)
        missing = [tx_id for tx_id in ids if tx_id not in found]
        if missing:
            raise NotFoundError(f"{TX_MULTIPLE}: {len(missing)} transactions unknown: {missing[0]}")
        return found

    async def _multiple(self, tx_ids: Sequence[str]) -> list[V1Transaction]:
        # An array parameter: tx_id repeated (a comma-joined list is one invalid id).
        query: dict[str, QueryValue] = {"tx_id": list(tx_ids), "event_limit": EVENT_LIMIT}
        request = self._transport.request(TX_MULTIPLE, {}, query)
        answer = await self._transport.fetch(request, partial(_parse_multiple, route=TX_MULTIPLE))
        return answer

    async def _all_events(self, tx_id: str) -> list[V3Event]:
        events: list[V3Event] = []
        cursor: str | None = None
        for _ in range(100_000):
            query: dict[str, str | int] = {"limit": EVENT_LIMIT}
            if cursor is not None:
                query["cursor"] = cursor
            request = self._transport.request(TX_EVENTS, {"tx_id": tx_id}, query)
            page = await self._transport.fetch(
                request, partial(wire.parse, V3EventPage, route=TX_EVENTS), errors=_missing(tx_id)
            )
            events += page.results
            following = page.cursor.next
            if following is None or not page.results:
                return events
            if following == cursor:
                break
            cursor = following
        raise MalformedResponseError(f"{TX_EVENTS} for {tx_id}: the cursor chain does not end")


def _missing(what: str) -> dict[int, ErrorFactory]:
    return {404: lambda message, _: NotFoundError(f"{what} not found: {message}")}


def _parse_multiple(data: Any, route: str) -> list[V1Transaction]:
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{route} answered {type(data).__name__}, not an object")
    found = []
    for entry in data.values():
        item = wire.parse(V1Found, entry, route)
        if item.found:
            found.append(wire.parse(V1Transaction, item.result, route))
    return found


# --- decoding ---------------------------------------------------------------------------


def header_ref(header: BlockHeader) -> tuple[BlockRef, BlockRef]:
    """A header's own identity and its parent's."""
    own = BlockRef(header.height, header.hash, header.index_block_hash)
    parent = BlockRef(header.height - 1, header.parent_block_hash, header.parent_index_block_hash)
    return own, parent


def tx_from_summary(summary: BlockTxSummary) -> ChainTx:
    """A transaction whose summary says everything: a transfer, a failure, a coinbase."""
    payer = summary.sponsor.address if summary.sponsor is not None else summary.sender.address
    success = summary.status == SUCCESS
    moves: tuple[AssetMove, ...] = ()
    transfer = summary.token_transfer
    if success and summary.type == "token_transfer" and transfer is not None:
        moves = (AssetMove(STX_ASSET, summary.sender.address, transfer.recipient, transfer.amount),)
    call = summary.contract_call
    return ChainTx(
        tx_id=summary.tx_id,
        index=summary.block.tx_index,
        sender=summary.sender.address,
        success=success,
        fee=summary.fee_rate,
        payer=payer,
        contract_call=None if call is None else call.contract_id,
        moves=moves,
    )


def tx_from_details(
    summary: BlockTxSummary, tx: V1Transaction, events: Iterable[V1Event | V3Event]
) -> ChainTx:
    """A transaction with every event (v1 events from ``/tx/multiple``, v3 events
    from the per-transaction route)."""
    base = tx_from_summary(summary)
    if not base.success:
        return base
    moves: list[AssetMove] = []
    logs: list[ContractLog] = []
    locks: list[StxLock] = []
    for event in sorted(events, key=lambda e: e.event_index):
        decoded = _v1_event(event) if isinstance(event, V1Event) else _v3_event(event)
        if isinstance(decoded, AssetMove):
            moves.append(decoded)
        elif isinstance(decoded, ContractLog):
            logs.append(decoded)
        elif isinstance(decoded, StxLock):
            locks.append(decoded)
    return ChainTx(
        tx_id=base.tx_id,
        index=base.index,
        sender=base.sender,
        success=True,
        fee=base.fee,
        payer=base.payer,
        contract_call=base.contract_call,
        moves=tuple(moves),
        logs=tuple(logs),
        locks=tuple(locks),
    )


Decoded = AssetMove | ContractLog | StxLock | None


def _v1_event(event: V1Event) -> Decoded:
    kind = event.event_type
    if kind in ("stx_asset", "fungible_token_asset") and event.asset is not None:
        asset = event.asset
        name = STX_ASSET if kind == "stx_asset" else asset.asset_id
        if name is None or asset.amount is None:
            raise MalformedResponseError(f"{TX_MULTIPLE}: event {event.event_index} is incomplete")
        return _move(name, asset.asset_event_type, asset.sender, asset.recipient, asset.amount)
    if kind == "smart_contract_log" and event.contract_log is not None:
        log = event.contract_log
        return ContractLog(log.contract_id, log.topic, log.value.hex)
    if kind == "stx_lock" and event.stx_lock_event is not None:
        lock = event.stx_lock_event
        return StxLock(lock.locked_address, lock.locked_amount, lock.unlock_height)
    return None  # NFT events and kinds that do not move fungible balances


def _v3_event(event: V3Event) -> Decoded:
    if event.type == "stx_asset" and event.stx_asset is not None:
        body = event.stx_asset
        return _move(STX_ASSET, body.type, body.sender, body.recipient, body.amount)
    if event.type == "ft_asset" and event.ft_asset is not None:
        ft = event.ft_asset
        return _move(ft.asset_identifier, ft.type, ft.sender, ft.recipient, ft.amount)
    if event.type == "contract_log" and event.contract_log is not None:
        log = event.contract_log
        return ContractLog(log.contract_id, log.topic, log.value.hex)
    if event.type == "stx_lock" and event.stx_lock is not None:
        lock = event.stx_lock
        return StxLock(lock.address, lock.amount, lock.unlock_bitcoin_height)
    return None


def _move(
    asset: str, action: str, sender: str | None, recipient: str | None, amount: int
) -> AssetMove:
    """A move from an event; the API writes ``""`` (v1) or leaves out (v3) the party a
    mint or burn has not."""
    source = sender or None
    target = recipient or None
    if action == "mint":
        source = None
    elif action == "burn":
        target = None
    elif action != "transfer":
        raise MalformedResponseError(f"an asset event of unknown type {action[:40]!r}")
    if source is None and target is None:
        raise MalformedResponseError(f"a {action} event naming neither sender nor recipient")
    return AssetMove(asset, source, target, amount)


def summaries_by_id(summaries: Iterable[BlockTxSummary]) -> Mapping[str, BlockTxSummary]:
    return {summary.tx_id: summary for summary in summaries}
