"""Backfill: an address's past balances, walked back from a known present.

Live sync records a change point whenever a refresh sees an amount move; what
happened before an address was first tracked has to be read from its
transaction history instead. :class:`Backfiller` walks that history newest to
oldest from an *anchor* (the address's balances as the service last read them,
each with the chain tip height of its read) and writes one change point per
transaction that moved a token: the amount after it, at its block time and height.

- **STX** from each transaction's ``balance_changes.stx.net``. The API counts the
  fee in it, so fees are included, also for aborted transactions, which pay their
  fee but move nothing else (the stand-in charges no fees).
- **Native FTs** from ``/balance-changes`` for the page's successful transactions
  with ``affected_balances.ft`` (20 ids a request).
- **Map-based tokens** (``map_tokens``, plus anchor tokens of kind ``map``) from
  the ``print`` events of successful calls to their contract (see
  :mod:`.backfill_events`). A print that cannot be read stops that token there:
  its history starts at that transaction, and the report says why. Moves made
  through another contract, and credits received from others (the API indexes a
  transaction under its sender and asset parties, and map balances are no asset),
  are invisible; the walk then ends away from zero, reported as a *residual*.
- Transactions above a token's anchor height happened after the anchor: live sync
  covers them, so they are skipped. The newest backfilled point of a token
  therefore holds the anchor's amount, and the live point at the anchor is a
  no-op once a series is normalised (:mod:`balances.domain.series`).
- ``since`` stops the walk at the first transaction at or before it and records
  the amount in force at ``since`` as a point there.

**Resuming.** After each page the points go to ``layout.record_history`` and then
a checkpoint (cursor, running amounts, counters; ``backfill/<address>``, zstd
JSON) is written with a conditional put. A backfill interrupted by an exception
or a crash resumes from the checkpoint with the plan it started with (the anchor
and options given to the resumed call are ignored) and folds the remaining pages
into exactly the points an uninterrupted run gives. A crash between
``record_history`` and the checkpoint replays that one page: the same points
again, which layouts absorb (a series is a step function; equal points merge). A
finished backfill run again is a no-op unless ``force=True`` starts it afresh.
Two backfills of one address at once: the second to write the checkpoint fails
with :class:`~balances.errors.WriteConflictError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from balances.blobs import BlobStore, blob_key
from balances.chain.history import TX_PAGE_LIMIT, HistoryReader, PrincipalTx
from balances.chain.routes import MAX_PAGES
from balances.domain import Principal, parse_timestamp
from balances.domain.current import AddressBalances, Change
from balances.errors import MalformedResponseError, ValidationError, WriteConflictError
from balances.stores.document import SharedDocument
from balances.stores.encoding import decode_document, encode_document
from balances.sync.backfill_events import Delta, map_token_deltas
from balances.sync.backfill_state import (
    WalkState,
    apply_tx,
    close_at_end,
    close_at_since,
    start_state,
    state_from_json,
    state_to_json,
)

CHECKPOINT_KIND = "backfill-checkpoint"
CHECKPOINT_FORMAT = 1
#: ``progress(transactions walked so far, the principal's total or None)``.
Progress = Callable[[int, int | None], None]
_Body = dict[str, Any]


class HistoryWriter(Protocol):
    """Where backfilled points go: any :class:`~balances.stores.layout.BalanceLayout`."""

    async def record_history(self, address: Principal, changes: Sequence[Change]) -> None: ...


@dataclass(frozen=True, slots=True)
class BackfillReport:
    """What a backfill did. ``txs_seen``, ``points_written`` and ``pages`` count this
    call; ``total_*`` the whole walk (resumed runs included). ``first_point`` is each
    token's oldest point; ``stopped`` why a token's history starts where it does;
    ``residuals`` what a token still held when the history ran out (should be 0)."""

    address: str
    txs_seen: int
    points_written: int
    pages: int
    total_txs: int
    total_points: int
    first_point: dict[str, datetime] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    residuals: dict[str, int] = field(default_factory=dict)
    resumed: bool = False
    done: bool = False
    already_done: bool = False


def checkpoint_key(address: str) -> str:
    """The blob holding the backfill checkpoint of ``address``."""
    return blob_key("backfill", address)


class Backfiller:
    """Walks addresses' histories into a layout; see the module docstring."""

    def __init__(
        self,
        chain: HistoryReader,
        layout: HistoryWriter,
        blobs: BlobStore,
        *,
        wall_clock: Callable[[], float] = time.time,
        page_size: int = TX_PAGE_LIMIT,
    ) -> None:
        if not 1 <= page_size <= TX_PAGE_LIMIT:
            raise ValidationError(f"page_size must be in 1..{TX_PAGE_LIMIT}, got {page_size}")
        self._chain = chain
        self._layout = layout
        self._blobs = blobs
        self._wall = wall_clock
        self._page_size = page_size

    async def backfill(
        self,
        address: Principal,
        anchor: AddressBalances,
        *,
        tokens: Collection[str] | None = None,
        map_tokens: Collection[str] = (),
        since: datetime | None = None,
        progress: Progress | None = None,
        force: bool = False,
    ) -> BackfillReport:
        """Backfill ``address`` from ``anchor``; ``tokens`` restricts the walk to these
        keys (None: every token of the anchor plus any met in the history)."""
        holder = str(address)
        if anchor.address != holder:
            raise ValidationError(f"the anchor is of {anchor.address}, not of {holder}")
        document = self._document(holder)
        stored = await document.current()
        saved = state_from_json(stored, document.key) if stored else None
        if saved is not None and saved.done and not force:
            return _report(saved, resumed=False, already_done=True)
        resumed = saved is not None and not force
        if saved is None or force:
            moment = None if since is None else parse_timestamp(since).timestamp()
            saved = start_state(holder, anchor, tokens, map_tokens, moment)
        before = (saved.txs, saved.points, saved.pages)
        await self._walk(address, saved, document, stored, progress)
        return _report(saved, resumed=resumed, before=before)

    async def _walk(
        self,
        address: Principal,
        state: WalkState,
        document: SharedDocument[_Body],
        expected: _Body,
        progress: Progress | None,
    ) -> None:
        while not state.done:
            if state.pages >= MAX_PAGES:
                raise MalformedResponseError(
                    f"the transactions of {address} did not end after {MAX_PAGES} pages"
                )
            changes, seen, total = await self._page(address, state)
            if changes:
                await self._layout.record_history(address, changes)
            state.pages += 1
            state.txs += seen
            state.points += len(changes)
            expected = await self._save(document, expected, state)
            if progress is not None:
                progress(state.txs, total)

    async def _page(
        self, address: Principal, state: WalkState
    ) -> tuple[list[Change], int, int | None]:
        """Fold the next page into ``state``: its points, transactions walked, total."""
        if not state.has_work():
            state.done, state.cursor = True, None
            return [], 0, None
        page = await self._chain.get_principal_transactions(
            address, cursor=state.cursor, limit=self._page_size
        )
        txs, reached_since = _newer_than(page.txs, state.plan.since)
        deltas = await self._deltas(address, state, txs)
        changes = [c for tx in txs for c in apply_tx(state, tx, deltas.get(tx.tx_id, {}))]
        if reached_since or page.next_cursor is None:
            if not reached_since:
                close_at_end(state)
            if state.plan.since is not None:
                changes += close_at_since(state)
            state.done, state.cursor = True, None
        else:
            state.cursor = page.next_cursor
        return changes, len(txs), page.total

    async def _deltas(
        self, address: Principal, state: WalkState, txs: Sequence[PrincipalTx]
    ) -> dict[str, dict[str, Delta]]:
        """Per transaction id, the native and map-token changes of ``address`` by key."""
        deltas: dict[str, dict[str, Delta]] = {}
        for tx_id, found in (await self._native(address, state, txs)).items():
            deltas.setdefault(tx_id, {}).update(found)
        for tx_id, mapped in (await self._mapped(address, state, txs)).items():
            deltas.setdefault(tx_id, {}).update(mapped)
        return deltas

    async def _native(
        self, address: Principal, state: WalkState, txs: Sequence[PrincipalTx]
    ) -> dict[str, dict[str, int]]:
        ceiling = state.native_ceiling()
        if ceiling is None:
            return {}
        ids = [
            tx.tx_id for tx in txs if tx.succeeded and tx.affects_ft and tx.block_height <= ceiling
        ]
        if not ids:
            return {}
        wanted = set(ids)
        found: dict[str, dict[str, int]] = {}
        for change in await self._chain.get_balance_changes(address, ids):
            if change.asset_type != "ft" or change.identifier is None:
                continue
            key = state.key_for_asset(change.identifier) if change.tx_id in wanted else None
            if key is not None:
                row = found.setdefault(change.tx_id, {})
                row[key] = row.get(key, 0) + change.net
        return found

    async def _mapped(
        self, address: Principal, state: WalkState, txs: Sequence[PrincipalTx]
    ) -> dict[str, dict[str, Delta]]:
        tracks = state.active("map")
        found: dict[str, dict[str, Delta]] = {}
        for tx in txs:
            track = tracks.get(tx.contract_id or "")
            if track is None or not tx.succeeded or tx.block_height > track.anchor_height:
                continue
            events = await self._chain.get_tx_events(tx.tx_id)
            found[tx.tx_id] = map_token_deltas(events, tracks.keys(), str(address))
        return found

    def _document(self, holder: str) -> SharedDocument[_Body]:
        return SharedDocument(
            self._blobs,
            checkpoint_key(holder),
            empty=dict,
            encode=encode_checkpoint,
            decode=decode_checkpoint,
            recheck_seconds=0.0,
        )

    async def _save(
        self, document: SharedDocument[_Body], expected: _Body, state: WalkState
    ) -> _Body:
        """Write the checkpoint if it is still the one this walk last read or wrote."""
        body = {**state_to_json(state), "updated_at": self._wall()}

        def change(current: _Body) -> _Body:
            if current != expected:
                raise WriteConflictError(
                    f"{document.key}: another backfill of {state.address} wrote the checkpoint"
                )
            return body

        return await document.update(change)


def _newer_than(txs: Sequence[PrincipalTx], since: float | None) -> tuple[list[PrincipalTx], bool]:
    """The leading transactions after ``since``, and whether one at or before it came."""
    if since is None:
        return list(txs), False
    for index, tx in enumerate(txs):
        if tx.block_time <= since:
            return list(txs[:index]), True
    return list(txs), False


def encode_checkpoint(body: _Body) -> bytes:
    return encode_document(CHECKPOINT_KIND, CHECKPOINT_FORMAT, body)


def decode_checkpoint(data: bytes, key: str) -> _Body:
    document = decode_document(data, CHECKPOINT_KIND, CHECKPOINT_FORMAT, where=key)
    body = {name: value for name, value in document.items() if name not in ("kind", "format")}
    if body:
        state_from_json(body, key)  # refuse a checkpoint of the wrong shape as it is read
    return body


def _report(
    state: WalkState,
    *,
    resumed: bool,
    already_done: bool = False,
    before: tuple[int, int, int] | None = None,
) -> BackfillReport:
    txs, points, pages = before or (state.txs, state.points, state.pages)
    return BackfillReport(
        address=state.address,
        txs_seen=state.txs - txs,
        points_written=state.points - points,
        pages=state.pages - pages,
        total_txs=state.txs,
        total_points=state.points,
        first_point=_times({k: t.first for k, t in state.tracks.items()}),
        stopped={k: t.stopped for k, t in state.tracks.items() if t.stopped is not None},
        residuals=dict(state.residuals),
        resumed=resumed,
        done=state.done,
        already_done=already_done,
    )


def _times(firsts: Mapping[str, float | None]) -> dict[str, datetime]:
    return {k: datetime.fromtimestamp(t, UTC) for k, t in firsts.items() if t is not None}
