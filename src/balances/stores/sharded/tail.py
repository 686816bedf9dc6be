"""The tail of the sharded layout: journal records newer than the shard blobs.

Each address's records fold into a view (laid over its shard's blob when read)
and its change points (laid over the month blobs); retractions not yet compacted
void states and points of the blobs beneath them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from balances.domain import BalancePoint
from balances.domain.current import AddressBalances, TokenKindName, apply_changes, merge_views
from balances.domain.retractions import Retraction, Voided, apply_retractions
from balances.stores.sharded.journal import Record

#: The tail's segment mark of records staged but not yet written (sorts after every id).
STAGED = "~staged"


@dataclass(slots=True)
class AddressTail:
    view: AddressBalances
    points: list[tuple[str, TokenKindName, BalancePoint]] = field(default_factory=list)
    newest: str = ""
    #: Retractions of this address not yet compacted: folded over the shard's blob too,
    #: which may hold the state (or the point) they void.
    retractions: list[Retraction] = field(default_factory=list)
    voided: Voided = field(default_factory=Voided)

    def over(self, stored: AddressBalances | None) -> AddressBalances:
        """This tail laid over the shard blob's ``stored`` view. The retractions void
        states of the blob, which comes before them: void first, then join (a
        retraction does not commute with the join)."""
        if stored is None:
            return self.view
        return merge_views(apply_retractions(stored, self.retractions) or stored, self.view)

    def absorb(self, record: Record, segment_id: str, view: AddressBalances) -> None:
        """Take ``record`` in; ``view`` is this tail's view with its changes applied."""
        self.points += [(change.key, change.kind, change.point()) for change in record.changes]
        if self.retractions and record.changes:
            made = {(c.key, c.stamp, c.new) for c in record.changes}
            self.retractions = [
                r for r in self.retractions if (r.key, r.stamp, r.amount) not in made
            ]
            for c in record.changes:
                self.voided.discard(c.key, c.point())
        if record.retracted:
            view = apply_retractions(view, record.retracted) or view
            self.retractions += record.retracted
            self.voided.add(record.retracted)
            self.points = [p for p in self.points if (p[0], p[2]) not in self.voided]
        self.view = view
        self.newest = max(self.newest, segment_id)


class Tail:
    """Every address's tail, by canonical address."""

    def __init__(self) -> None:
        self._by_address: dict[str, AddressTail] = {}

    def get(self, address: str) -> AddressTail | None:
        return self._by_address.get(address)

    def fold(self, record: Record, segment_id: str) -> None:
        tail = self._by_address.get(record.address)
        view = apply_changes(
            tail.view if tail else None, record.address, record.changes, record.listing
        )
        if tail is None:
            tail = self._by_address[record.address] = AddressTail(view)
        tail.absorb(record, segment_id, view)

    def written(self, addresses: set[str], segment_id: str) -> None:
        """Staged records of ``addresses`` are now in segment ``segment_id``."""
        for address in addresses:
            tail = self._by_address.get(address)
            if tail is not None and tail.newest == STAGED:
                tail.newest = segment_id

    def addresses(self) -> Iterator[tuple[str, AddressTail]]:
        return iter(list(self._by_address.items()))

    def drop(self, address: str) -> None:
        del self._by_address[address]


def since(stored: float | None, tail: AddressTail | None) -> datetime | None:
    """When an address's history begins: the oldest of its shard blob's ``stored``
    start and its tail's points."""
    times = [] if stored is None else [stored]
    if tail is not None:
        times += [point.at.timestamp() for _, _, point in tail.points]
    return datetime.fromtimestamp(min(times), UTC) if times else None
