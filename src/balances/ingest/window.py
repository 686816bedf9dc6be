"""The recent blocks ingestion applied, with what each changed: how a reorg is undone.

Every applied block keeps its undo log: for each pair it set, the state before and
after. Undoing a block turns its log into retractions (newest first): the state it
set is void and the one before comes back; the block's history points go.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from balances.chain.events import BlockRef
from balances.domain.current import TokenKindName, TokenState
from balances.domain.retractions import Retraction
from balances.stores.sharded.journal import Record


@dataclass(frozen=True, slots=True)
class Undo:
    """One pair a block set: ``before`` None when nothing was stored for it."""

    address: str
    key: str
    kind: TokenKindName
    before: TokenState | None
    after: TokenState


@dataclass(slots=True)
class AppliedBlock:
    ref: BlockRef
    parent: BlockRef
    time: float
    undo: list[Undo] = field(default_factory=list)

    def pairs(self) -> set[tuple[str, str]]:
        return {(u.address, u.key) for u in self.undo}


class Window:
    """The last ``size`` applied blocks, oldest first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"the reorg window holds at least one block, got {size}")
        self._blocks: deque[AppliedBlock] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[AppliedBlock]:
        return iter(self._blocks)

    @property
    def tip(self) -> AppliedBlock | None:
        return self._blocks[-1] if self._blocks else None

    @property
    def oldest(self) -> AppliedBlock | None:
        return self._blocks[0] if self._blocks else None

    def push(self, block: AppliedBlock) -> None:
        self._blocks.append(block)

    def find(self, ref: BlockRef) -> AppliedBlock | None:
        """The applied block ``ref`` names (by height and a shared hash)."""
        for block in reversed(self._blocks):
            if block.ref.height == ref.height and block.ref.same_as(ref):
                return block
        return None

    def pop_after(self, height: int) -> list[AppliedBlock]:
        """Remove and return every block above ``height``, newest first."""
        undone = []
        while self._blocks and self._blocks[-1].ref.height > height:
            undone.append(self._blocks.pop())
        return undone

    def clear(self) -> None:
        self._blocks.clear()


def retraction_records(blocks: Iterable[AppliedBlock]) -> list[Record]:
    """The journal records that undo ``blocks`` (given newest first): per block, one
    record per address with its pairs' retractions in reverse order of setting."""
    records: list[Record] = []
    for block in blocks:
        by_address: dict[str, list[Retraction]] = {}
        for undo in reversed(block.undo):
            by_address.setdefault(undo.address, []).append(
                Retraction(undo.key, undo.kind, undo.after.amount, undo.after.stamp, undo.before)
            )
        records += [Record(address, (), None, tuple(r)) for address, r in by_address.items()]
    return records
