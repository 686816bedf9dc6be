"""Reorgs of the fake chain: orphan the top blocks, mine a different branch in their place.

:func:`reorganise` undoes the top ``depth`` canonical blocks exactly (balances,
supplies, nonces, locks, the principals' transaction lists), marks them orphaned,
and mines ``depth + 1`` new blocks from the same parent: new hashes, each orphaned
transaction re-included (same tx id, in the block at the same height) with
probability ``keep``, at least one of them dropped, and one new STX transfer per
new block between principals the orphaned transactions involved (when one of them
can pay). So balances after a reorg differ from before whenever the orphaned
blocks moved anything. The choice is seeded: the same chain, depth and seed give
the same reorg. The journal gets one :class:`~balances.testing.fake_chain.journal.ChainReorg`.
"""

from __future__ import annotations

import random
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from balances.testing.fake_chain.blocks import Block, BlockLog
from balances.testing.fake_chain.drafts import BlockDraft
from balances.testing.fake_chain.journal import ChainJournal, ChainReorg
from balances.testing.fake_chain.records import STX_KEY, FakeChainError, Tx, TxIntent, fake_address


class ReorgableChain(Protocol):
    """What a reorg reaches into: the fake chain (:class:`~.ledger.FakeChain`) and its
    transaction engine, private parts included (a reorg rewrites its history)."""

    network: str
    blocks: BlockLog
    journal: ChainJournal
    _draft: BlockDraft | None
    _pending_mode: bool
    _quiet: bool
    _salt: str
    _intents: dict[str, TxIntent]

    @property
    def tip(self) -> Block: ...

    @property
    def tip_height(self) -> int: ...

    def block(self, time: int | None = None) -> AbstractContextManager[BlockDraft]: ...

    def block_transactions(self, block: Block | str) -> list[Tx]: ...

    def available(self, principal: str) -> int: ...

    def transfer(self, token: str, sender: str, recipient: str, amount: int) -> str: ...

    def _execute(self, intent: TxIntent, draft: BlockDraft) -> None: ...

    def _undo_block(self, height: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Reorg:
    """What a reorg did. Blocks are listed oldest first."""

    orphaned: tuple[Block, ...]
    applied: tuple[Block, ...]
    reincluded: tuple[str, ...]  # tx ids mined again in the new branch
    dropped: tuple[str, ...]  # orphaned tx ids in no new block (canonical: false)
    added: tuple[str, ...]  # tx ids that exist only in the new branch

    @property
    def fork_height(self) -> int:
        """The first height that changed."""
        return self.orphaned[0].height


@dataclass(slots=True)
class _Outcome:
    reincluded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def reorganise(chain: ReorgableChain, depth: int, *, seed: int = 0, keep: float = 0.5) -> Reorg:
    """Replace the top ``depth`` blocks of ``chain`` (see the module docstring)."""
    if chain._draft is not None or chain._pending_mode:
        raise FakeChainError("cannot reorg while a block or the mempool is being built")
    if not 0.0 <= keep <= 1.0:
        raise FakeChainError(f"keep must be a probability in 0..1, got {keep!r}")
    mined = chain.tip_height - chain.blocks.start_height
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= mined:
        raise FakeChainError(
            f"depth must be an int in 1..{mined} (blocks mined since the start height), "
            f"got {depth!r}"
        )
    old = tuple(
        chain.blocks.at_height(h) for h in range(chain.tip_height - depth + 1, chain.tip_height + 1)
    )
    old_blocks = tuple(block for block in old if block is not None)
    old_txs = [chain.block_transactions(block) for block in old_blocks]
    for block in reversed(old_blocks):
        chain._undo_block(block.height)
    chain.blocks.orphan(depth)
    rng = random.Random(f"{chain._salt}:reorg:{chain.blocks.reorgs}:{seed}")
    kept = _choose_kept(rng, old_txs, keep)
    participants = sorted({p for txs in old_txs for tx in txs for p in tx.involved if "." not in p})
    outcome = _Outcome()
    new_blocks: list[Block] = []
    chain._quiet = True
    try:
        for index in range(depth + 1):
            with chain.block() as draft:
                if index < depth:
                    _reinclude(chain, draft, old_txs[index], kept, outcome)
                _add_transfer(chain, rng, participants, index, outcome)
            new_blocks.append(chain.tip)
    finally:
        chain._quiet = False
    chain.journal.append(ChainReorg(old_blocks, tuple(new_blocks)))
    return Reorg(
        old_blocks,
        tuple(new_blocks),
        tuple(outcome.reincluded),
        tuple(outcome.dropped),
        tuple(outcome.added),
    )


def _choose_kept(rng: random.Random, old_txs: list[list[Tx]], keep: float) -> set[str]:
    every = [tx.tx_id for txs in old_txs for tx in txs]
    kept = {tx_id for tx_id in every if rng.random() < keep}
    if every and len(kept) == len(every):
        kept.discard(every[-1])  # a reorg that changes nothing would test nothing
    return kept


def _reinclude(
    chain: ReorgableChain, draft: BlockDraft, txs: list[Tx], kept: set[str], outcome: _Outcome
) -> None:
    for tx in txs:
        if tx.tx_id not in kept:
            outcome.dropped.append(tx.tx_id)
            continue
        try:
            chain._execute(chain._intents[tx.tx_id], draft)
        except FakeChainError:
            outcome.dropped.append(tx.tx_id)  # it depended on a dropped transaction
        else:
            outcome.reincluded.append(tx.tx_id)


def _add_transfer(
    chain: ReorgableChain,
    rng: random.Random,
    participants: list[str],
    index: int,
    outcome: _Outcome,
) -> None:
    """One new STX transfer from a participant that can pay, to another (or a newcomer)."""
    funded = [p for p in participants if chain.available(p) >= 2]
    if not funded:
        return
    sender = rng.choice(funded)
    others = [p for p in participants if p != sender]
    recipient = rng.choice(others) if others and rng.random() < 0.7 else None
    if recipient is None:
        recipient = fake_address(f"reorg:{chain.blocks.reorgs}:{index}", chain.network)
    amount = rng.randint(1, max(1, chain.available(sender) // 10))
    outcome.added.append(chain.transfer(STX_KEY, sender, recipient, amount))
