"""History reads from the v3 API: a principal's transactions, their balance changes, tx events.

These are what a backfill walks (PROTOCOLS.md 1.5, "recipe for an FT history"):
transactions newest first, 50 a page, with the STX net change of each; the native
FT changes of up to 20 transactions per request; and, for map-based ("subnet")
tokens the API never lists, the ``print`` events of a transaction.

Facts a caller must know:

- **Only ``status == "success"`` moves tokens.** An aborted transaction
  (``abort_by_response`` / ``abort_by_post_condition``) still pays its fee, and
  the API's ``balance_changes.stx`` already includes the fee in ``sent`` and
  ``net``; so ``stx_net`` is the whole STX effect of any transaction, fee included.
  FT and map-token movements of a non-successful transaction were rolled back.
- ``affected_balances.ft`` says whether asking for FT changes is worth a request.
- The mixin adds the methods to :class:`~balances.chain.client.StacksClient`; the
  :class:`HistoryReader` protocol is what :mod:`balances.sync.backfill` needs, kept
  apart from :class:`~balances.chain.protocol.ChainReader` so test doubles of the
  balance reads need not grow history methods.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from balances.chain import wire
from balances.chain.clarity import ClarityValue, deserialize
from balances.chain.inputs import as_principal
from balances.chain.routes import BALANCE_CHANGES, MAX_PAGES, PRINCIPAL_TXS, TX_EVENTS
from balances.chain.transport import ErrorFactory, Transport
from balances.chain.wire_history import (
    BalanceChangeItem,
    BalanceChangePage,
    PrincipalTxPage,
    PrincipalTxRow,
    TxEventItem,
    TxEventPage,
)
from balances.domain import Principal
from balances.errors import (
    ClarityDecodeError,
    MalformedResponseError,
    NotFoundError,
    ValidationError,
)

#: The API's maximum page sizes: transactions and balance changes 50, events 100.
TX_PAGE_LIMIT = 50
CHANGE_PAGE_LIMIT = 50
EVENT_PAGE_LIMIT = 100
#: The most transaction ids one ``/balance-changes`` request may name.
MAX_TX_IDS = 20
SUCCESS = "success"

_TX_ID_INPUT = re.compile(r"(0x)?[0-9a-fA-F]{64}")
PageT = TypeVar("PageT", BalanceChangePage, TxEventPage)


@dataclass(frozen=True, slots=True)
class PrincipalTx:
    """One transaction of a principal, as much of it as a backfill needs.

    ``stx_net`` is the principal's signed STX change, fee included (see module doc).
    """

    tx_id: str
    block_height: int
    block_time: float
    tx_index: int
    status: str
    type: str
    fee: int
    contract_id: str | None
    function_name: str | None
    stx_net: int
    affects_stx: bool
    affects_ft: bool

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS


@dataclass(frozen=True, slots=True)
class TxPage:
    """One page of transactions, newest first; ``next_cursor`` None on the last page."""

    txs: tuple[PrincipalTx, ...]
    next_cursor: str | None
    total: int


@dataclass(frozen=True, slots=True)
class BalanceChange:
    """A principal's signed change of one asset in one transaction."""

    tx_id: str
    asset_type: str  # "stx", "ft" or "nft"
    identifier: str | None  # ADDR.contract::asset for ft and nft
    net: int


@dataclass(frozen=True, slots=True)
class TxEvent:
    """One event of a transaction; a ``print`` carries its decoded Clarity value."""

    event_index: int
    type: str
    contract_id: str | None = None
    topic: str | None = None
    value: ClarityValue | None = None


class HistoryReader(Protocol):
    """The history reads a backfill needs (StacksClient implements them)."""

    async def get_principal_transactions(
        self, principal: str | Principal, *, cursor: str | None = None, limit: int = TX_PAGE_LIMIT
    ) -> TxPage:
        """One page of ``principal``'s transactions, newest first."""
        ...

    async def get_balance_changes(
        self, principal: str | Principal, tx_ids: Sequence[str]
    ) -> list[BalanceChange]:
        """Every balance change of ``principal`` in these transactions (any number)."""
        ...

    async def get_tx_events(self, tx_id: str) -> list[TxEvent]:
        """Every event of one transaction, prints decoded."""
        ...


class HistoryMixin:
    """The history methods of :class:`~balances.chain.client.StacksClient`."""

    _transport: Transport

    async def get_principal_transactions(
        self, principal: str | Principal, *, cursor: str | None = None, limit: int = TX_PAGE_LIMIT
    ) -> TxPage:
        """One page of ``principal``'s confirmed transactions, newest first.

        ``cursor`` is a previous page's ``next_cursor`` (None: the newest page).
        """
        holder = str(as_principal(principal))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= TX_PAGE_LIMIT:
            raise ValidationError(f"limit must be an int in 1..{TX_PAGE_LIMIT}, got {limit!r}")
        query: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        page = await self._history_get(PRINCIPAL_TXS, {"principal": holder}, query, PrincipalTxPage)
        following = page.cursor.next
        if following is not None and (following == cursor or not page.results):
            raise MalformedResponseError(
                f"{PRINCIPAL_TXS} for {holder}: the cursor chain does not advance "
                f"(cursor {following[:80]!r})"
            )
        return TxPage(tuple(map(_principal_tx, page.results)), following, page.total)

    async def get_balance_changes(
        self, principal: str | Principal, tx_ids: Sequence[str]
    ) -> list[BalanceChange]:
        """Every balance change of ``principal`` in ``tx_ids``: 20 ids per request
        (the API's bound), each request paged to its end."""
        holder = str(as_principal(principal))
        ids = list(dict.fromkeys(_checked_tx_id(tx_id) for tx_id in tx_ids))
        changes: list[BalanceChange] = []
        for start in range(0, len(ids), MAX_TX_IDS):
            query: dict[str, str | int] = {
                "tx_id": ",".join(ids[start : start + MAX_TX_IDS]),
                "limit": CHANGE_PAGE_LIMIT,
            }
            pages = await self._all_pages(
                BALANCE_CHANGES, {"principal": holder}, query, BalanceChangePage
            )
            changes += [_change(item) for page in pages for item in page.results]
        return changes

    async def get_tx_events(self, tx_id: str) -> list[TxEvent]:
        """Every event of ``tx_id``; ``print`` values decoded (an undecodable one is a
        malformed answer). An unknown transaction is NotFoundError."""
        checked = _checked_tx_id(tx_id)
        missing: dict[int, ErrorFactory] = {
            404: lambda message, _: NotFoundError(f"no transaction {checked}: {message}")
        }
        pages = await self._all_pages(
            TX_EVENTS, {"tx_id": checked}, {"limit": EVENT_PAGE_LIMIT}, TxEventPage, missing
        )
        return [_event(item) for page in pages for item in page.results]

    async def _all_pages(
        self,
        route: str,
        path: Mapping[str, str],
        query: Mapping[str, str | int],
        model: type[PageT],
        errors: Mapping[int, ErrorFactory] | None = None,
    ) -> list[PageT]:
        pages: list[PageT] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page_query = dict(query) if cursor is None else {**query, "cursor": cursor}
            page = await self._history_get(route, path, page_query, model, errors)
            pages.append(page)
            cursor = page.cursor.next
            if cursor is None:
                return pages
            if cursor in seen or not page.results or len(seen) >= MAX_PAGES:
                raise MalformedResponseError(
                    f"{route}: the cursor chain does not end "
                    f"(cursor {cursor[:80]!r} after {len(seen) + 1} pages)"
                )
            seen.add(cursor)

    async def _history_get(
        self,
        route: str,
        path: Mapping[str, str],
        query: Mapping[str, str | int],
        model: type[wire.ModelT],
        errors: Mapping[int, ErrorFactory] | None = None,
    ) -> wire.ModelT:
        # Not conditional: history pages are read once, so caching their ETags
        # would only push the balance reads' ETags out of the cache.
        request = self._transport.request(route, path, query)
        return await self._transport.fetch(
            request, partial(wire.parse, model, route=route), errors=errors
        )


def _checked_tx_id(tx_id: str) -> str:
    if not isinstance(tx_id, str) or not _TX_ID_INPUT.fullmatch(tx_id):
        raise ValidationError(f"a transaction id is 64 hex digits (0x optional), got {tx_id!r}")
    text = tx_id.lower()
    return text if text.startswith("0x") else "0x" + text


def _principal_tx(row: PrincipalTxRow) -> PrincipalTx:
    tx = row.transaction
    call = tx.contract_call
    return PrincipalTx(
        tx_id=tx.tx_id,
        block_height=tx.block.height,
        block_time=float(tx.block.time),
        tx_index=tx.block.tx_index,
        status=tx.status,
        type=tx.type,
        fee=tx.fee_rate,
        contract_id=None if call is None else call.contract_id,
        function_name=None if call is None else call.function_name,
        stx_net=row.balance_changes.stx.net,
        affects_stx=row.affected_balances.stx,
        affects_ft=row.affected_balances.ft,
    )


def _change(item: BalanceChangeItem) -> BalanceChange:
    return BalanceChange(
        item.tx_id, item.asset.type, item.asset.identifier, item.balance_change.net
    )


def _event(item: TxEventItem) -> TxEvent:
    log = item.contract_log
    if item.type != "contract_log" or log is None:
        return TxEvent(item.event_index, item.type)
    value: ClarityValue | None = None
    if log.topic == "print":
        try:
            value = deserialize(log.value.hex)
        except ClarityDecodeError as error:
            raise MalformedResponseError(
                f"{TX_EVENTS}: event {item.event_index} of {log.contract_id} is not a "
                f"Clarity value: {error}"
            ) from error
    return TxEvent(item.event_index, item.type, log.contract_id, log.topic, value)
