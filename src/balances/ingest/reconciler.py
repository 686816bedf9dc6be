"""The drift reconciler: re-read a rotating sample of tracked addresses with the
refresh plan, and repair what ingestion got wrong (docs/ingestion.md).

What blocks cannot show drifts: matured miner rewards (not in the API's block
routes), a token the events misdescribe, a bug. Each run reads the next
``addresses`` tracked addresses (in a fixed order, so over time every one is read)
with exact heights; where the read was taken at the height ingestion stands at,
a stored amount that differs is drift: counted by token kind, and repaired by the
read itself (it is newer). Only changed amounts are written: a run that finds
nothing writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from balances.domain import Principal
from balances.ingest.ingestor import Ingestor
from balances.ingest.rules import base_state
from balances.sync.syncer import Syncer


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    checked: int
    compared: int
    drift: int


class Reconciler:
    def __init__(self, ingestor: Ingestor, syncer: Syncer, *, addresses: int = 1) -> None:
        self.ingestor = ingestor
        self.syncer = syncer
        self.addresses = addresses
        self._next = 0

    def _sample(self) -> list[str]:
        tracked = sorted(self.ingestor.index.addresses)
        if not tracked or self.addresses <= 0:
            return []
        start = self._next % len(tracked)
        chosen = [
            tracked[(start + i) % len(tracked)] for i in range(min(self.addresses, len(tracked)))
        ]
        self._next = start + len(chosen)
        return chosen

    async def run_once(self) -> ReconcileReport:
        await self.ingestor.index.refresh()
        chosen = [Principal.parse(address) for address in self._sample()]
        cursor = self.ingestor.cursor
        if not chosen or cursor is None:
            return ReconcileReport(0, 0, 0)
        before = await self.ingestor.store.load_many(chosen)
        outcomes = await self.syncer.refresh_many(chosen)
        compared = drift = 0
        for outcome in outcomes:
            stored = before.get(outcome.address)
            if stored is None or outcome.store_error is not None:
                continue
            for key, state in outcome.balances.tokens.items():
                if state.stamp.block_height != cursor.height:
                    continue  # read at another height than ingestion stands at: no verdict
                # A native token stored nowhere is zero as of a complete listing.
                known = base_state(stored, key, state.kind)
                compared += 1
                if known is not None and known.amount != state.amount:
                    drift += 1
                    self.ingestor.stats.drift_found[state.kind] += 1
                    self.ingestor.stats.drift_repaired[state.kind] += 1
        self.ingestor.stats.reconciled += len(chosen)
        self.ingestor.on_change([outcome.address for outcome in outcomes])
        return ReconcileReport(len(chosen), compared, drift)
