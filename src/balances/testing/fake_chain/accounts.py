"""The fake ledger's balances: per principal and token, with history by height, undoable.

Every change is recorded against the height of the block that makes it, so the
ledger answers "as of height h" and a reorg undoes its blocks exactly: it drops
the snapshots taken at or above the first orphaned height. STX fees leave the
payer's balance and the supply (the miner's share is not modelled). Stacked STX
stays in the balance; :meth:`AccountBook.available` leaves it out until the lock's
unlock burn height.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from balances.testing.fake_chain.records import STX_KEY, Move, StxLock

#: (balance, sent, received, fees) at the end of one block.
Snapshot = tuple[int, int, int, int]


@dataclass(slots=True)
class Account:
    """One principal's position in one token, with its history by height."""

    balance: int = 0
    sent: int = 0
    received: int = 0
    fees: int = 0  # STX fees paid (``total_fees_sent``); not part of ``sent``
    heights: list[int] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    def at(self, height: int | None) -> tuple[int, int, int]:
        """(balance, sent, received) as of the end of block ``height`` (None: now)."""
        balance, sent, received, _ = self.state_at(height)
        return (balance, sent, received)

    def state_at(self, height: int | None) -> Snapshot:
        if height is None:
            return (self.balance, self.sent, self.received, self.fees)
        position = bisect.bisect_right(self.heights, height) - 1
        return self.snapshots[position] if position >= 0 else (0, 0, 0, 0)

    def snapshot(self, height: int) -> None:
        state = (self.balance, self.sent, self.received, self.fees)
        if self.heights and self.heights[-1] == height:
            self.snapshots[-1] = state
        else:
            self.heights.append(height)
            self.snapshots.append(state)

    def truncate(self, height: int) -> None:
        """Forget every change made at or above ``height``."""
        keep = bisect.bisect_left(self.heights, height)
        del self.heights[keep:], self.snapshots[keep:]
        self.balance, self.sent, self.received, self.fees = (
            self.snapshots[-1] if self.snapshots else (0, 0, 0, 0)
        )


@dataclass(frozen=True, slots=True)
class LockRecord:
    amount: int
    unlock_burn_height: int
    tx_id: str
    height: int
    burn_height: int


@dataclass(slots=True)
class BlockChanges:
    """What one block changed, so that it can be undone."""

    touched: set[tuple[str, str]] = field(default_factory=set)  # (principal, token key)
    supply: Counter[str] = field(default_factory=Counter)
    locks: list[tuple[str, LockRecord | None]] = field(default_factory=list)  # (who, before)


class AccountBook:
    """Balances, supplies and STX locks of every principal."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Account]] = {}  # principal -> token key -> account
        self.supply: Counter[str] = Counter()
        self.locks: dict[str, LockRecord] = {}

    def balance(self, principal: str, token: str, height: int | None = None) -> int:
        account = self.accounts.get(principal, {}).get(token)
        return 0 if account is None else account.at(height)[0]

    def locked(self, principal: str, burn_height: int) -> int:
        """STX of ``principal`` still locked at ``burn_height``."""
        lock = self.locks.get(principal)
        return lock.amount if lock is not None and burn_height < lock.unlock_burn_height else 0

    def available(self, principal: str, token: str, burn_height: int) -> int:
        held = self.balance(principal, token)
        return held - self.locked(principal, burn_height) if token == STX_KEY else held

    def account(self, principal: str, token: str) -> Account:
        return self.accounts.setdefault(principal, {}).setdefault(token, Account())

    def apply_move(self, move: Move, height: int, changes: BlockChanges) -> None:
        if move.sender is None:
            self.supply[move.token] += move.amount
            changes.supply[move.token] += move.amount
        else:
            account = self._touch(move.sender, move.token, changes)
            account.balance -= move.amount
            account.sent += move.amount
            account.snapshot(height)
        if move.recipient is None:
            self.supply[move.token] -= move.amount
            changes.supply[move.token] -= move.amount
        else:
            account = self._touch(move.recipient, move.token, changes)
            account.balance += move.amount
            account.received += move.amount
            account.snapshot(height)

    def charge_fee(self, payer: str, fee: int, height: int, changes: BlockChanges) -> None:
        account = self._touch(payer, STX_KEY, changes)
        account.balance -= fee
        account.fees += fee
        account.snapshot(height)
        self.supply[STX_KEY] -= fee
        changes.supply[STX_KEY] -= fee

    def lock(self, event: StxLock, record: LockRecord, changes: BlockChanges) -> None:
        changes.locks.append((event.locked_address, self.locks.get(event.locked_address)))
        self.locks[event.locked_address] = record

    def undo(self, height: int, changes: BlockChanges) -> None:
        """Undo the block at ``height`` (the newest one still applied)."""
        for principal, token in changes.touched:
            tokens = self.accounts[principal]
            tokens[token].truncate(height)
            if not tokens[token].heights:
                del tokens[token]  # never touched by a canonical block
                if not tokens:
                    del self.accounts[principal]
        self.supply.subtract(changes.supply)
        for principal, before in reversed(changes.locks):
            if before is None:
                del self.locks[principal]
            else:
                self.locks[principal] = before

    def _touch(self, principal: str, token: str, changes: BlockChanges) -> Account:
        changes.touched.add((principal, token))
        return self.account(principal, token)
