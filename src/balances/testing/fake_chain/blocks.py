"""The fake chain's blocks: heights, hashes and times, looked up by height, hash or time.

Blocks from ``start_height`` on are mined by the ledger and stored. Earlier blocks
(down to height 1) are synthesized on demand, ``block_seconds`` apart, so a
client can map any time after the chain's genesis to a height like it would on
mainnet. Hashes are deterministic, so runs are reproducible.

A reorg (:meth:`BlockLog.orphan`) takes blocks off the top of the canonical chain;
they stay known by hash (``canonical`` false). Blocks mined after the n-th reorg
hash with n in the digest, so a height mined again gets new hashes, and every
block names its actual parent.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime

from balances.testing.fake_chain.records import digest_hex

BURN_BLOCK_SECONDS = 600
#: Bitcoin height of the chain's start block, and of Stacks 2.0's genesis (tenure 0).
START_BURN_HEIGHT = 830_000
GENESIS_BURN_HEIGHT = 666_050


def iso_time(unix: int) -> str:
    """``YYYY-MM-DDTHH:mm:ss.sssZ``, as the API writes times."""
    moment = datetime.fromtimestamp(unix, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Block:
    """One Stacks block and its anchoring Bitcoin block."""

    height: int
    time: int
    hash: str
    index_block_hash: str
    parent_block_hash: str
    parent_index_block_hash: str
    burn_block_height: int
    burn_block_hash: str
    burn_block_time: int
    miner_txid: str
    tx_ids: tuple[str, ...] = ()

    @property
    def tenure_height(self) -> int:
        return self.burn_block_height - GENESIS_BURN_HEIGHT


class BlockLog:
    """Every block of one fake chain."""

    def __init__(self, salt: str, start_height: int, start_time: int, block_seconds: int) -> None:
        if start_height < 1:
            raise ValueError(f"start_height must be >= 1, got {start_height}")
        if block_seconds < 1:
            raise ValueError(f"block_seconds must be >= 1, got {block_seconds}")
        if start_time - start_height * block_seconds < 0:
            raise ValueError("start_time is too early for start_height blocks of history")
        self._salt = salt
        self._start_height = start_height
        self._start_time = start_time
        self._block_seconds = block_seconds
        self._generation = 0  # reorgs so far
        self._orphaned: set[str] = set()
        self._by_hash: dict[str, Block] = {}
        genesis = self._make(start_height, start_time, (), self._synthesized(start_height - 1))
        self._mined: list[Block] = [genesis]
        self._times: list[int] = [start_time]
        self._index(genesis)

    @property
    def tip(self) -> Block:
        return self._mined[-1]

    @property
    def block_seconds(self) -> int:
        return self._block_seconds

    @property
    def start_height(self) -> int:
        return self._start_height

    @property
    def reorgs(self) -> int:
        return self._generation

    def mine(self, time: int, tx_ids: tuple[str, ...] = ()) -> Block:
        """Append the next block at ``time`` (never earlier than the tip)."""
        block = self._make(self.tip.height + 1, max(time, self.tip.time), tx_ids, self.tip)
        self._mined.append(block)
        self._times.append(block.time)
        self._index(block)
        return block

    def orphan(self, depth: int) -> tuple[Block, ...]:
        """Take the top ``depth`` blocks off the canonical chain; returns them, oldest first."""
        if not 1 <= depth < len(self._mined):
            raise ValueError(
                f"depth must be in 1..{len(self._mined) - 1} (blocks mined above the start "
                f"height {self._start_height}), got {depth}"
            )
        orphaned = tuple(self._mined[-depth:])
        del self._mined[-depth:], self._times[-depth:]
        self._orphaned.update(block.hash for block in orphaned)
        self._generation += 1
        return orphaned

    def is_canonical(self, block: Block) -> bool:
        return block.hash not in self._orphaned

    def newest_first(self, offset: int, limit: int) -> list[Block]:
        """Canonical blocks from the tip down, skipping ``offset`` of them."""
        top = self.tip.height - offset
        found = (self.at_height(height) for height in range(top, max(0, top - limit), -1))
        return [block for block in found if block is not None]

    def at_height(self, height: int) -> Block | None:
        if height < 1 or height > self.tip.height:
            return None
        if height >= self._start_height:
            return self._mined[height - self._start_height]
        block = self._synthesized(height)
        self._index(block)  # so a synthesized block can be fetched by hash afterwards
        return block

    def by_hash(self, text: str) -> Block | None:
        """A block by its hash or index block hash (``0x`` optional, any case)."""
        key = text.lower()
        return self._by_hash.get(key if key.startswith("0x") else "0x" + key)

    def at_time(self, unix: int) -> Block | None:
        """The most recent block at or before ``unix``; None before height 1."""
        if unix >= self._start_time:
            position = bisect.bisect_right(self._times, unix) - 1
            return self._mined[position]
        behind = -(-(self._start_time - unix) // self._block_seconds)  # ceiling
        return self.at_height(self._start_height - behind)

    def burn_height_at(self, time: int) -> int:
        """The Bitcoin height a block mined at ``time`` anchors to."""
        return (
            START_BURN_HEIGHT + time // BURN_BLOCK_SECONDS - self._start_time // BURN_BLOCK_SECONDS
        )

    def _synthesized(self, height: int) -> Block:
        """History before the start height: ``block_seconds`` apart, never reorganised."""
        time = self._start_time - (self._start_height - height) * self._block_seconds
        parent = (self._digest("block", height - 1, 0), self._digest("index", height - 1, 0))
        return self._make(height, time, (), parent, generation=0)

    def _make(
        self,
        height: int,
        time: int,
        tx_ids: tuple[str, ...],
        parent: Block | tuple[str, str],
        generation: int | None = None,
    ) -> Block:
        burn_slot = time // BURN_BLOCK_SECONDS
        burn_height = self.burn_height_at(time)
        parent_hash, parent_index = (
            (parent.hash, parent.index_block_hash) if isinstance(parent, Block) else parent
        )
        generation = self._generation if generation is None else generation
        return Block(
            height=height,
            time=time,
            hash=self._digest("block", height, generation),
            index_block_hash=self._digest("index", height, generation),
            parent_block_hash=parent_hash,
            parent_index_block_hash=parent_index,
            burn_block_height=burn_height,
            burn_block_hash=self._hash("burn", burn_height),
            burn_block_time=burn_slot * BURN_BLOCK_SECONDS,
            miner_txid=self._hash("miner", burn_height),
            tx_ids=tx_ids,
        )

    def _hash(self, kind: str, number: int) -> str:
        return digest_hex(self._salt, kind, number)

    def _digest(self, kind: str, height: int, generation: int) -> str:
        if generation == 0:
            return self._hash(kind, height)  # the hashes of a chain that never reorganised
        return digest_hex(self._salt, kind, height, generation)

    def _index(self, block: Block) -> None:
        self._by_hash[block.hash] = block
        self._by_hash[block.index_block_hash] = block
