"""The tracked set as ingestion asks it, many times a block: is this address tracked,
and which map-based tokens does it follow? Held in memory, refreshed from the
shared tracked-set blob (:class:`~balances.stores.tracked.TrackedSet`) at most every
``recheck_seconds``; a track or untrack on this replica refreshes it at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from balances.domain import TokenId
from balances.errors import BalancesError
from balances.stores.tracked import TrackedAddress, TrackedSet
from balances.sync.catalog import TokenCatalog


class TrackedIndex:
    def __init__(
        self,
        tracked: TrackedSet,
        catalog: TokenCatalog,
        map_tokens: Collection[str],
        *,
        recheck_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracked = tracked
        self._catalog = catalog
        self.global_maps = frozenset(map_tokens)
        self._recheck = recheck_seconds
        self._clock = clock
        self._addresses: frozenset[str] = frozenset()
        self._maps: dict[str, frozenset[str]] = {}
        self._kinds: dict[str, bool] = {}  # contract id -> is map-based
        self._loaded_at: float | None = None
        self.entries: dict[str, TrackedAddress] = {}

    @property
    def addresses(self) -> frozenset[str]:
        return self._addresses

    def __contains__(self, address: object) -> bool:
        return address in self._addresses

    def map_tokens(self) -> frozenset[str]:
        """Every map-based token some tracked address follows."""
        found = set(self.global_maps)
        for tokens in self._maps.values():
            found |= tokens
        return frozenset(found)

    def follows(self, address: str, contract: str) -> bool:
        """Whether ``address`` is tracked and reads map-based ``contract``."""
        if address not in self._addresses:
            return False
        return contract in self.global_maps or contract in self._maps.get(address, ())

    def maps_of(self, address: str) -> frozenset[str]:
        return self.global_maps | self._maps.get(address, frozenset())

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read the tracked set when due (or ``force``)."""
        now = self._clock()
        if not force and self._loaded_at is not None and now - self._loaded_at < self._recheck:
            return
        if force:
            self._tracked.invalidate()
        entries = {entry.address: entry for entry in await self._tracked.entries()}
        maps: dict[str, frozenset[str]] = {}
        for address, entry in entries.items():
            found = [token for token in entry.tokens if await self._is_map(token)]
            if found:
                maps[address] = frozenset(found)
        self.entries = entries
        self._addresses = frozenset(entries)
        self._maps = maps
        self._loaded_at = now

    async def _is_map(self, token: str) -> bool:
        known = self._kinds.get(token)
        if known is None:
            try:
                known = await self._catalog.kind(TokenId.parse(token)) == "map"
            except BalancesError:
                return True  # unknown kind: follow it (a read tells), do not drop it
            self._kinds[token] = known
        return known
