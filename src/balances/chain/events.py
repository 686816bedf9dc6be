"""Blocks as ingestion sees them: what each transaction moved, whatever source told us.

Every block source (the Stacks API's block routes, a Chainhook delivery, a node's
event observer) is decoded into these few immutable types, so the rules that fold
a block into balances (:mod:`balances.ingest`) are written once.

Facts every decoder keeps (PROTOCOLS.md 1.5, 5; the node's event stream):

- **A fee is paid whatever the outcome.** ``ChainTx.fee`` is debited from
  ``payer`` (the sponsor of a sponsored transaction, else the sender) even when
  the transaction aborted; a failed transaction's asset events were rolled back,
  so decoders give it no ``moves``.
- **Amounts are exact** ints in base units (u128), never negative: a move has a
  sender (None for a mint) and a recipient (None for a burn).
- **STX locks** (stacking) do not change the API's ``balance`` (which includes
  locked STX); they are kept as ``locks`` so a consumer can say a pair was touched.
- ``logs`` are the ``print`` events with the raw Clarity value (hex), the only
  trace of map-based ("subnet") token movements.
- Block identity: ``index_hash`` (unique across forks) where the source gives it,
  and ``block_hash``; parents likewise. :meth:`ChainBlock.follows` compares
  whichever both sides know.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: The token key of STX in moves.
STX_ASSET = "stx"


@dataclass(frozen=True, slots=True)
class BlockRef:
    """Which block: its height and the hashes the source gave (either may be None)."""

    height: int
    block_hash: str | None = None
    index_hash: str | None = None

    @property
    def hashes(self) -> frozenset[str]:
        return frozenset(h.lower() for h in (self.block_hash, self.index_hash) if h is not None)

    def same_as(self, other: BlockRef) -> bool | None:
        """Whether both name the same block: a hash in common says yes, two disjoint
        sets of hashes say no, and None means there is no hash to compare. Hashes are
        compared as sets because sources label them differently (a Chainhook block
        identifier is one hash, the API gives both)."""
        if self.height != other.height:
            return False
        mine, theirs = self.hashes, other.hashes
        if not mine or not theirs:
            return None
        return bool(mine & theirs)

    @property
    def label(self) -> str:
        """``height@hash`` for messages (the first hash known, shortened)."""
        known = self.index_hash or self.block_hash or "?"
        return f"{self.height}@{known[:12]}"


@dataclass(frozen=True, slots=True)
class AssetMove:
    """One balance movement: ``asset`` is ``stx`` or an asset identifier
    (``ADDR.contract::asset``); a mint has no sender, a burn no recipient."""

    asset: str
    sender: str | None
    recipient: str | None
    amount: int


@dataclass(frozen=True, slots=True)
class ContractLog:
    """A ``print`` event of ``contract_id`` with its Clarity value (hex, ``0x``)."""

    contract_id: str
    topic: str
    value_hex: str | None


@dataclass(frozen=True, slots=True)
class StxLock:
    principal: str
    amount: int
    unlock_height: int


@dataclass(frozen=True, slots=True)
class ChainTx:
    """One transaction of a block, as far as balances care."""

    tx_id: str
    index: int
    sender: str
    success: bool
    fee: int = 0
    #: Who paid the fee (a sponsor, or the sender); None when the source did not say.
    payer: str | None = None
    #: The contract a ``contract_call`` called (None for other transaction types).
    contract_call: str | None = None
    moves: tuple[AssetMove, ...] = ()
    logs: tuple[ContractLog, ...] = ()
    locks: tuple[StxLock, ...] = ()


@dataclass(frozen=True, slots=True)
class ChainBlock:
    """A block: identity, parent, time (unix seconds) and its transactions in order.

    ``rewards`` are STX credits the block carries outside any transaction (a node's
    matured miner rewards); the API's block routes do not show them.
    """

    ref: BlockRef
    parent: BlockRef
    time: float
    txs: tuple[ChainTx, ...] = ()
    rewards: tuple[AssetMove, ...] = ()

    @property
    def height(self) -> int:
        return self.ref.height

    def follows(self, tip: BlockRef) -> bool | None:
        """Whether ``tip`` is this block's parent (None: no shared hash to tell)."""
        return self.parent.same_as(tip)

    def moves(self) -> Iterator[AssetMove]:
        """Every balance movement of the block, fees included (as STX burns from the
        payer), in transaction order."""
        yield from self.rewards
        for tx in self.txs:
            if tx.fee > 0 and tx.payer is not None:
                yield AssetMove(STX_ASSET, tx.payer, None, tx.fee)
            if tx.success:
                yield from tx.moves


@dataclass(frozen=True, slots=True)
class MempoolTx:
    """A pending transaction's expected effect, for pending balances only (never
    folded into confirmed ones): what its payload says it will move."""

    tx_id: str
    moves: tuple[AssetMove, ...]
    fee: int = 0
    payer: str | None = None
