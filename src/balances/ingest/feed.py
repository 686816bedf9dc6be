"""What a block source hands the ingestor, and what the ingestor needs from the chain.

Sources (:mod:`balances.ingest.pull`, :mod:`balances.ingest.push`) turn their wire
formats into these events; the ingestor applies them one at a time, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from balances.chain.events import BlockRef, ChainBlock, MempoolTx
from balances.chain.wire_blocks import BlockHeader
from balances.domain import Principal


@dataclass(frozen=True, slots=True)
class Apply:
    """A new canonical block."""

    block: ChainBlock


@dataclass(frozen=True, slots=True)
class Rollback:
    """Blocks the source says are no longer canonical (Chainhook's ``rollback``)."""

    blocks: tuple[ChainBlock, ...]


@dataclass(frozen=True, slots=True)
class Pending:
    """Mempool news: transactions seen, and transactions dropped."""

    added: tuple[MempoolTx, ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TipSeen:
    """The source saw the chain tip (pull: a probe that found no new block)."""

    ref: BlockRef
    time: float


IngestEvent = Apply | Rollback | Pending | TipSeen


class PairReader(Protocol):
    """Reads one balance exactly as of a block (the node's ``tip`` parameter)."""

    async def get_balance_at(
        self, principal: str | Principal, token: str, index_block_hash: str
    ) -> int: ...


class BlockFetcher(Protocol):
    """Fetches canonical blocks by height: the pull source, and how push sources fill
    a gap or find where a fork began."""

    async def header(self, height: int) -> BlockHeader | None:
        """The canonical header at ``height`` (None: the chain is not that tall yet)."""
        ...

    async def block(self, height: int) -> ChainBlock | None:
        """The canonical block at ``height`` with every transaction decoded."""
        ...

    async def tip(self) -> BlockHeader:
        """The newest block."""
        ...
