"""The records of the fake chain's transaction engine: a mempool entry, the block
being built, and what a canonical block changed (to undo it in a reorg)."""

from __future__ import annotations

from dataclasses import dataclass, field

from balances.testing.fake_chain.accounts import BlockChanges
from balances.testing.fake_chain.records import TxIntent


@dataclass(frozen=True, slots=True)
class Pending:
    """A transaction in the mempool (``receipt_time`` on the chain's clock)."""

    intent: TxIntent
    receipt_time: int
    receipt_block_height: int


@dataclass(slots=True)
class BlockDraft:
    """The block being built: its height, time and the transactions so far."""

    height: int
    time: int
    intents: list[TxIntent] = field(default_factory=list)
    changes: BlockChanges = field(default_factory=BlockChanges)
    nonces_before: dict[str, int] = field(default_factory=dict)

    @property
    def tx_ids(self) -> tuple[str, ...]:
        return tuple(intent.tx_id for intent in self.intents)


@dataclass(slots=True)
class AppliedChanges:
    """What a canonical block changed, to undo it in a reorg."""

    changes: BlockChanges
    nonces_before: dict[str, int]
    indexed: list[str]  # principals whose transaction lists got an entry
