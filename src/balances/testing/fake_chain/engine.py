"""How the fake ledger executes transactions: signing, blocks, the mempool, undo.

A mutation of :class:`~balances.testing.fake_chain.ledger.FakeChain` becomes a
:class:`TxPlan` (what it does), then a signed :class:`TxIntent` (nonce, fee,
sponsor, raw bytes, tx id), which is

- added to the mempool inside ``with chain.pending():``,
- executed into the open block inside ``with chain.block():``,
- or else mined alone in a new block (the default: one transaction per block).

Executing checks first (an overdraft raises and changes nothing), then charges
the fee to the payer and, when the transaction succeeds, applies its events.
Every new block first includes the pending transactions, in the order they came;
one that can no longer run is mined as ``abort_by_response`` if its fee can be
paid and dropped (``StaleGarbageCollect``) otherwise. Build a block synchronously:
requests are answered between awaits, so do not await inside ``chain.block()``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace

from balances.domain import MAX_AMOUNT, Principal
from balances.testing.fake_chain.accounts import AccountBook, LockRecord
from balances.testing.fake_chain.blocks import Block, BlockLog
from balances.testing.fake_chain.drafts import AppliedChanges, BlockDraft, Pending
from balances.testing.fake_chain.journal import (
    DROP_REASONS,
    BlockApplied,
    ChainJournal,
    MempoolAdded,
    MempoolDropped,
)
from balances.testing.fake_chain.records import (
    STX_KEY,
    TX_STATUSES,
    FakeChainError,
    InsufficientBalanceError,
    Move,
    StxLock,
    Tx,
    TxIntent,
    TxStatus,
)
from balances.testing.fake_chain.signing import TxPlan, sign
from balances.testing.fake_chain.txwire import U64_LIMIT


class TxEngine:
    """Transactions, blocks and mempool of a fake chain (mixed into ``FakeChain``)."""

    network: str

    def _init_engine(self, salt: str, blocks: BlockLog) -> None:
        self._salt = salt
        self.blocks = blocks
        self.book = AccountBook()
        self.journal = ChainJournal()
        self._txs: dict[str, Tx] = {}  # tx id -> its newest inclusion (canonical if any)
        self._intents: dict[str, TxIntent] = {}
        self._block_txs: dict[str, list[Tx]] = {}  # block hash -> its transactions
        self._by_principal: dict[str, list[Tx]] = {}
        self._nonces: Counter[str] = Counter()
        self._applied: dict[int, AppliedChanges] = {}  # canonical height -> undo record
        self._draft: BlockDraft | None = None
        self._pending_mode = False
        self._submitted: list[str] = []
        self._mempool: dict[str, Pending] = {}
        self._dropped: dict[str, tuple[Pending, str]] = {}
        self._quiet = False  # a reorg journals its blocks itself
        #: orphaned block hash -> (principal, token key) -> balance after that block, for
        #: the pairs it touched (a node still answers ``?tip=`` for an orphaned block)
        self._orphan_states: dict[str, dict[tuple[str, str], int]] = {}

    # --- blocks ----------------------------------------------------------------

    @contextlib.contextmanager
    def block(self, time: int | None = None) -> Iterator[BlockDraft]:
        """Mine every transaction made inside the ``with`` into one block.

        The block starts with the pending transactions; it is mined when the
        ``with`` ends, at ``time`` (default: ``block_seconds`` after the tip). If an
        exception escapes, the whole block is discarded and the error re-raised.
        """
        if self._draft is not None:
            raise FakeChainError("a block is already being built; blocks do not nest")
        tip = self.blocks.tip
        when = tip.time + self.blocks.block_seconds if time is None else max(time, tip.time)
        draft = BlockDraft(tip.height + 1, when)
        self._draft, mempool = draft, dict(self._mempool)
        try:
            stale = self._include_pending(draft)
            yield draft
        except BaseException:
            self._draft, self._mempool = None, mempool
            self.book.undo(draft.height, draft.changes)
            self._restore_nonces(draft.nonces_before)
            raise
        self._draft = None
        self._seal(draft)
        self._drop(stale, "StaleGarbageCollect")

    def mine_block(self, time: int | None = None) -> Block:
        """Mine the next block now: the pending transactions, or empty."""
        with self.block(time):
            pass
        return self.blocks.tip

    def block_transactions(self, block: Block | str) -> list[Tx]:
        """The transactions of a block (canonical or orphaned), in ``tx_index`` order."""
        key = block.hash if isinstance(block, Block) else block
        found = self.blocks.by_hash(key)
        return list(self._block_txs.get(found.hash, ())) if found is not None else []

    def is_canonical(self, tx: Tx) -> bool:
        found = self.blocks.by_hash(tx.block_hash)
        return found is not None and self.blocks.is_canonical(found)

    def balance_after(self, principal: str, token_key: str, block: Block) -> int:
        """``principal``'s balance as of the end of ``block``, canonical or orphaned: an
        orphaned block's own changes, else its parent's state, down to the fork point."""
        current = block
        while not self.blocks.is_canonical(current):
            state = self._orphan_states.get(current.hash, {})
            if (principal, token_key) in state:
                return state[(principal, token_key)]
            parent = self.blocks.by_hash(current.parent_block_hash)
            if parent is None:  # a parent below the start height: canonical history
                return self.book.balance(principal, token_key, current.height - 1)
            current = parent
        return self.book.balance(principal, token_key, current.height)

    # --- mempool ---------------------------------------------------------------

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """Transactions made inside the ``with`` go to the mempool instead of a block
        (checked against the confirmed state; one ``MempoolAdded`` journal entry)."""
        if self._pending_mode or self._draft is not None:
            raise FakeChainError("chain.pending() cannot be nested or used inside chain.block()")
        self._pending_mode, self._submitted = True, []
        try:
            yield
        finally:
            self._pending_mode = False
            if self._submitted:
                self.journal.append(MempoolAdded(tuple(self._submitted)))

    @property
    def mempool(self) -> list[Pending]:
        """Pending transactions, oldest first."""
        return list(self._mempool.values())

    def drop_pending(self, tx_ids: Iterable[str], reason: str = "ReplaceByFee") -> list[str]:
        """Drop pending transactions (``/drop_mempool_tx``); returns the ids dropped."""
        if reason not in DROP_REASONS:
            raise FakeChainError(f"reason must be one of {', '.join(DROP_REASONS)}, got {reason!r}")
        dropped = [key for key in map(_tx_key, tx_ids) if key in self._mempool]
        self._drop(dropped, reason)
        return dropped

    def pending_transaction(self, tx_id: str) -> tuple[Pending, str] | None:
        """A mempool transaction and its status (``pending`` or ``dropped_<reason>``)."""
        key = _tx_key(tx_id)
        if key in self._mempool:
            return self._mempool[key], "pending"
        if key in self._dropped:
            pending, reason = self._dropped[key]
            return pending, "dropped_" + _snake(reason)
        return None

    # --- submitting ------------------------------------------------------------

    def _submit(
        self, plan: TxPlan, fee: int, sponsor: str | None, status: TxStatus, memo: bytes = b""
    ) -> str:
        intent = self._sign(plan, fee, sponsor, status, memo)
        if self._pending_mode:
            self._check(intent, self.blocks.tip.time)
            self._mempool[intent.tx_id] = Pending(
                intent, self.blocks.tip.time, self.blocks.tip.height
            )
            self._submitted.append(intent.tx_id)
        elif self._draft is not None:
            self._execute(intent, self._draft)
        else:
            with self.block() as draft:
                self._execute(intent, draft)
        return intent.tx_id

    def _sign(
        self, plan: TxPlan, fee: int, sponsor: str | None, status: TxStatus, memo: bytes
    ) -> TxIntent:
        if isinstance(fee, bool) or not isinstance(fee, int) or not 0 <= fee < U64_LIMIT:
            raise FakeChainError(f"fee must be an int in 0..2**64-1 (micro-STX), got {fee!r}")
        if status not in TX_STATUSES:
            raise FakeChainError(f"status must be one of {', '.join(TX_STATUSES)}, got {status!r}")
        if sponsor is not None:
            sponsor = str(Principal.parse(sponsor))
            if "." in sponsor or sponsor == plan.sender:
                raise FakeChainError(
                    "a sponsor signs the transaction: a standard address other than the sender"
                )
        nonce = self._next_nonce(plan.sender)
        sponsor_nonce = None if sponsor is None else self._next_nonce(sponsor)
        return sign(
            plan, self.network, self._salt, nonce, fee, (sponsor, sponsor_nonce), status, memo
        )

    def nonce_of(self, address: str) -> int:
        """The nonce the chain expects next of ``address`` (its mined transactions only,
        as the node's account answers it)."""
        return self._nonces[address]

    def _next_nonce(self, address: str) -> int:
        """The next nonce of ``address``, after its pending transactions."""
        pending = [
            p.intent.nonce if p.intent.sender == address else p.intent.sponsor_nonce
            for p in self._mempool.values()
            if address in (p.intent.sender, p.intent.sponsor)
        ]
        mempool_next = max((n + 1 for n in pending if n is not None), default=0)
        return max(self._nonces[address], mempool_next)

    # --- executing -------------------------------------------------------------

    def _execute(self, intent: TxIntent, draft: BlockDraft) -> None:
        self._check(intent, draft.time)
        height, changes = draft.height, draft.changes
        if intent.fee:
            self.book.charge_fee(intent.payer, intent.fee, height, changes)
        if intent.status == "success":
            for event in intent.events:
                if isinstance(event, Move):
                    self.book.apply_move(event, height, changes)
                elif isinstance(event, StxLock):
                    burn = self.blocks.burn_height_at(draft.time)
                    record = LockRecord(
                        event.amount, event.unlock_burn_height, intent.tx_id, height, burn
                    )
                    self.book.lock(event, record, changes)
        for address, nonce in (
            (intent.sender, intent.nonce),
            (intent.sponsor, intent.sponsor_nonce),
        ):
            if address is not None and nonce is not None:
                draft.nonces_before.setdefault(address, self._nonces[address])
                self._nonces[address] = max(self._nonces[address], nonce + 1)
        draft.intents.append(intent)
        self._intents[intent.tx_id] = intent

    def _check(self, intent: TxIntent, time: int) -> None:
        """Refuse the whole transaction if its fee or any step would overdraw or overflow."""
        burn = self.blocks.burn_height_at(time)
        spent: Counter[tuple[str, str]] = Counter()
        if intent.fee:
            self._debit(intent.payer, STX_KEY, intent.fee, spent, burn, "STX (fee)")
        if intent.status != "success":
            return
        minted: Counter[str] = Counter()
        for event in intent.events:
            if isinstance(event, StxLock):
                if self.book.locked(event.locked_address, burn):
                    raise FakeChainError(f"{event.locked_address} is already stacking")
                self._debit(
                    event.locked_address, STX_KEY, event.amount, spent, burn, "unlocked STX"
                )
            elif isinstance(event, Move):
                if event.sender is None:
                    minted[event.token] += event.amount
                    if self.book.supply[event.token] + minted[event.token] > MAX_AMOUNT:
                        raise FakeChainError(
                            f"minting {event.amount} would overflow {event.asset}'s u128 supply"
                        )
                else:
                    self._debit(event.sender, event.token, event.amount, spent, burn, event.asset)
                if event.recipient is not None:
                    spent[(event.recipient, event.token)] -= event.amount

    def _debit(
        self,
        principal: str,
        token: str,
        amount: int,
        spent: Counter[tuple[str, str]],
        burn: int,
        asset: str,
    ) -> None:
        have = self.book.available(principal, token, burn) - spent[(principal, token)]
        if have < amount:
            raise InsufficientBalanceError(
                f"{principal} holds {have} of {asset}, cannot send {amount}"
            )
        spent[(principal, token)] += amount

    def _include_pending(self, draft: BlockDraft) -> list[str]:
        """Execute the pending transactions into ``draft``; returns those to drop."""
        stale = []
        for pending in list(self._mempool.values()):
            intent = pending.intent
            del self._mempool[intent.tx_id]
            try:
                self._execute(intent, draft)
            except FakeChainError:
                try:
                    self._execute(replace(intent, status="abort_by_response"), draft)
                except FakeChainError:
                    self._mempool[intent.tx_id] = pending  # _drop records it as dropped
                    stale.append(intent.tx_id)
        return stale

    def _drop(self, tx_ids: list[str], reason: str) -> None:
        if not tx_ids:
            return
        for tx_id in tx_ids:
            self._dropped[tx_id] = (self._mempool.pop(tx_id), reason)
        self.journal.append(MempoolDropped(tuple(tx_ids), reason))

    # --- sealing and undoing -----------------------------------------------------

    def _seal(self, draft: BlockDraft) -> Block:
        block = self.blocks.mine(draft.time, draft.tx_ids)
        txs = [
            Tx.mined(intent, block.hash, block.height, index)
            for index, intent in enumerate(draft.intents)
        ]
        self._block_txs[block.hash] = txs
        indexed: list[str] = []
        for tx in txs:
            self._txs[tx.tx_id] = tx
            for principal in sorted(tx.involved):
                self._by_principal.setdefault(principal, []).append(tx)
                indexed.append(principal)
        self._applied[block.height] = AppliedChanges(draft.changes, draft.nonces_before, indexed)
        if not self._quiet:
            self.journal.append(BlockApplied(block))
        return block

    def _undo_block(self, height: int) -> None:
        """Undo the effects of the canonical block at ``height``, the newest one not yet
        undone (the caller then orphans the undone blocks in the block log)."""
        applied = self._applied.pop(height, None)
        if applied is None:
            raise FakeChainError(
                f"block {height} was not mined by this ledger; it cannot be undone"
            )
        block = self.blocks.at_height(height)
        if block is not None:
            self._orphan_states[block.hash] = {
                pair: self.book.balance(*pair, height) for pair in applied.changes.touched
            }
        self.book.undo(height, applied.changes)
        for principal in reversed(applied.indexed):
            txs = self._by_principal[principal]
            txs.pop()
            if not txs:
                del self._by_principal[principal]
        self._restore_nonces(applied.nonces_before)

    def _restore_nonces(self, before: dict[str, int]) -> None:
        for address, nonce in before.items():
            self._nonces[address] = nonce


def _tx_key(tx_id: str) -> str:
    key = tx_id.lower()
    return key if key.startswith("0x") else "0x" + key


def _snake(reason: str) -> str:
    """``ReplaceByFee`` -> ``replace_by_fee`` (the API's ``dropped_*`` statuses)."""
    return "".join("_" + char.lower() if char.isupper() else char for char in reason).lstrip("_")
