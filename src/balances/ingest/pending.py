"""Pending balances: what mempool transactions will move, kept apart from confirmed ones.

Only what a transaction's payload states is counted (an STX transfer, a SIP-010
``transfer`` call, and the fee); a contract call's other effects are unknown until
it is mined, so they are not guessed. A transaction leaves the book when a block
includes it or the node drops it. Bounded: the oldest entries go first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from balances.chain.events import STX_ASSET, MempoolTx

DEFAULT_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class PendingAmounts:
    """Pending inbound and outbound amounts of one (address, token)."""

    inbound: int = 0
    outbound: int = 0


class PendingBook:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._txs: OrderedDict[str, MempoolTx] = OrderedDict()
        self._by_address: dict[str, set[str]] = {}
        self._limit = limit

    def __len__(self) -> int:
        return len(self._txs)

    def add(self, txs: Iterable[MempoolTx]) -> None:
        for tx in txs:
            self.remove([tx.tx_id])
            self._txs[tx.tx_id] = tx
            for who in _parties(tx):
                self._by_address.setdefault(who, set()).add(tx.tx_id)
        while len(self._txs) > self._limit:
            self.remove([next(iter(self._txs))])

    def remove(self, tx_ids: Iterable[str]) -> None:
        for tx_id in tx_ids:
            tx = self._txs.pop(tx_id.lower(), None)
            if tx is None:
                continue
            for who in _parties(tx):
                ids = self._by_address.get(who)
                if ids is not None:
                    ids.discard(tx.tx_id)
                    if not ids:
                        del self._by_address[who]

    def amounts(self, address: str, token: str) -> PendingAmounts | None:
        """``address``'s pending amounts of ``token`` (``stx`` or a contract id); None
        when no pending transaction names it."""
        inbound = outbound = 0
        found = False
        for tx_id in self._by_address.get(address, ()):
            tx = self._txs[tx_id]
            if token == STX_ASSET and tx.payer == address and tx.fee:
                outbound += tx.fee
                found = True
            for move in tx.moves:
                if move.asset.partition("::")[0] != token:
                    continue
                if move.sender == address:
                    outbound += move.amount
                    found = True
                if move.recipient == address:
                    inbound += move.amount
                    found = True
        return PendingAmounts(inbound, outbound) if found else None


def _parties(tx: MempoolTx) -> set[str]:
    found = {tx.payer} if tx.payer else set()
    for move in tx.moves:
        found.update(p for p in (move.sender, move.recipient) if p is not None)
    return found
