"""A plain model chain for the ingestor's unit tests: blocks of moves, forks, and the
balance of any (address, token) as of any block, as the node's ``tip`` reads give
it. (The integration tests run the same scenarios against the real stand-in.)"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from balances.chain.events import AssetMove, BlockRef, ChainBlock, ChainTx
from balances.chain.wire_blocks import BlockHeader
from balances.errors import ChainUnavailableError, NotFoundError


def _hash(*parts: object) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


@dataclass
class ModelChain:
    start: int = 100
    genesis: dict[tuple[str, str], int] = field(default_factory=dict)
    blocks: list[ChainBlock] = field(default_factory=list)
    fork_count: int = 0
    reads: Counter[str] = field(default_factory=Counter)
    fail_reads: int = 0

    def __post_init__(self) -> None:
        self.blocks.append(self._make(self.start, (), None))

    @property
    def tip(self) -> ChainBlock:
        return self.blocks[-1]

    def _make(self, height: int, txs: tuple[ChainTx, ...], parent: ChainBlock | None) -> ChainBlock:
        salt = (self.fork_count, height)
        ref = BlockRef(height, _hash("b", *salt), _hash("i", *salt))
        parent_ref = (
            parent.ref if parent else BlockRef(height - 1, _hash("b", "g"), _hash("i", "g"))
        )
        return ChainBlock(ref, parent_ref, 1_700_000_000.0 + 5 * height, txs)

    def mine(self, *moves: AssetMove, fee: int = 0, payer: str | None = None) -> ChainBlock:
        txs = tuple(
            ChainTx(
                _hash("tx", self.fork_count, len(self.blocks), i),
                i,
                m.sender or payer or "SP0",
                True,
                fee,
                m.sender or payer,
                moves=(m,),
            )
            for i, m in enumerate(moves)
        )
        block = self._make(self.tip.height + 1, txs, self.tip)
        self.blocks.append(block)
        return block

    def fork(self, depth: int) -> list[ChainBlock]:
        """Orphan the last ``depth`` blocks (their moves are gone); returns them."""
        orphaned = self.blocks[-depth:]
        del self.blocks[-depth:]
        self.fork_count += 1
        return orphaned

    def balance(self, address: str, token: str, upto: ChainBlock | None = None) -> int:
        """As of ``upto`` (default the tip); ``token`` is stx or a contract id."""
        total = sum(v for (a, t), v in self.genesis.items() if a == address and t == token)
        for block in self.blocks:
            for move in block.moves():
                if move.asset.partition("::")[0] != token:
                    continue
                if move.recipient == address:
                    total += move.amount
                if move.sender == address:
                    total -= move.amount
            if upto is not None and block.ref == upto.ref:
                break
        return total

    # --- PairReader -----------------------------------------------------------------

    async def get_balance_at(self, principal: object, token: str, index_block_hash: str) -> int:
        self.reads[token] += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise ChainUnavailableError("injected read failure")
        for block in self.blocks:
            if block.ref.index_hash == index_block_hash:
                return self.balance(str(principal), token, block)
        raise NotFoundError(f"no block {index_block_hash}")

    # --- BlockFetcher ---------------------------------------------------------------------

    def _header(self, block: ChainBlock) -> BlockHeader:
        return BlockHeader(
            height=block.height,
            hash=block.ref.block_hash or "",
            block_time=int(block.time),
            index_block_hash=block.ref.index_hash or "",
            parent_block_hash=block.parent.block_hash or "",
            parent_index_block_hash=block.parent.index_hash or "",
            burn_block_height=1,
            tx_count=len(block.txs),
        )

    async def header(self, height: int) -> BlockHeader | None:
        found = self._at(height)
        return None if found is None else self._header(found)

    async def block(self, height: int) -> ChainBlock | None:
        return self._at(height)

    async def tip_header(self) -> BlockHeader:
        return self._header(self.tip)

    def _at(self, height: int) -> ChainBlock | None:
        offset = height - self.start
        return self.blocks[offset] if 0 <= offset < len(self.blocks) else None


class Fetcher:
    """The model as a BlockFetcher."""

    def __init__(self, chain: ModelChain) -> None:
        self.chain = chain

    async def header(self, height: int) -> BlockHeader | None:
        return await self.chain.header(height)

    async def block(self, height: int) -> ChainBlock | None:
        return await self.chain.block(height)

    async def tip(self) -> BlockHeader:
        return await self.chain.tip_header()
