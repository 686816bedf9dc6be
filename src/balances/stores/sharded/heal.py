"""What the sharded layout repairs by itself when a blob of it does not decode.

A damaged manifest is rebuilt from the listing (:mod:`.rebuild`) before a
write pass writes. A write pass (a sync batch, an ingestion flush, compaction)
that meets a damaged data blob moves it under ``quarantine/`` (:mod:`balances.stores.quarantine`)
instead of failing on it forever, and goes on:

- a **journal segment**: its records are lost and nothing says whose they were,
  so every address counts as *lost*;
- a **shard's current blob**: the addresses of that shard are lost;
- a **month blob or daily rollup**: history points are lost (current balances
  are not); ``balances store repair`` cannot see them any more, so the warning
  names the shard, whose addresses ``balances backfill --force`` restores.

A lost address reads as unknown (``load`` answers None), never as what is left of
it: the service then reads it from the chain, and the first complete read stored
for it (a successful listing, no failed token) ends its loss. The scheduler's sync
pass re-reads every tracked address. The record of what is lost is this process's;
other replicas see the quarantined blob as missing until the re-read lands.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from balances.domain.current import AddressUpdate
from balances.errors import CorruptBlobError, PreconditionFailedError
from balances.stores.layout import MaintenanceReport
from balances.stores.quarantine import quarantine
from balances.stores.sharded.compact import compact
from balances.stores.sharded.parts import ShardedParts
from balances.stores.sharded.rebuild import Rebuilt, rebuild_manifest

log = logging.getLogger("balances.stores")


#: Damaged blobs one write pass quarantines before it gives up.
HEAL_ATTEMPTS = 8


class Healer:
    """What one store repairs by itself, and the addresses a quarantine took until
    they are read again."""

    def __init__(
        self,
        parts: ShardedParts,
        *,
        poll: Callable[[], Awaitable[None]],
        invalidate: Callable[[], None],
    ) -> None:
        self._store = parts
        #: The store's own poll of the journal, and its forgetting of cached blobs.
        self._poll = poll
        self._invalidate = invalidate
        self.lost_shards: set[int] = set()
        self.lost_everything = False
        self._read_again: set[str] = set()
        #: damaged key -> its copy under quarantine/
        self.quarantined: dict[str, str] = {}

    async def before_write(self) -> None:
        """Repair what a write pass can before it writes: a damaged manifest is
        rebuilt, a damaged journal segment (met while polling) quarantined."""
        await self.heal_manifest()
        for _ in range(HEAL_ATTEMPTS):
            try:
                await self._poll()
                return
            except CorruptBlobError as error:
                if not await self.quarantine(error):
                    raise
        await self._poll()

    async def heal_manifest(self) -> Rebuilt | None:
        """Rebuild the manifest from the listing when it does not decode, so one
        damaged index blob does not stop the store; the rebuild, or None when the
        manifest was sound or another writer rebuilt it first."""
        store = self._store
        try:
            await store.manifest.current()
            return None
        except CorruptBlobError:
            pass
        try:
            rebuilt = await rebuild_manifest(store, store.wall_time())
        except PreconditionFailedError:
            store.manifest.invalidate()  # another replica (or a repair) rebuilt it first
            return None
        self._invalidate()
        return rebuilt

    async def compact(self, now: float) -> MaintenanceReport:
        """Compaction, quarantining each damaged blob it meets (then it goes on)."""
        for attempt in range(HEAL_ATTEMPTS):
            try:
                return await compact(self._store, now)
            except CorruptBlobError as error:
                if attempt == HEAL_ATTEMPTS - 1 or not await self.quarantine(error):
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    def is_lost(self, address: str) -> bool:
        if address in self._read_again:
            return False
        return self.lost_everything or self._store.shard(address) in self.lost_shards

    def stored(self, update: AddressUpdate) -> None:
        """``update`` was stored: a complete read ends its address's loss."""
        if update.listing_complete and not update.errors:
            self._read_again.add(update.address)

    async def quarantine(self, error: CorruptBlobError) -> bool:
        """Quarantine the blob ``error`` is about if it is one of the layout's data
        blobs; False (nothing done) for any other (the manifest heals on its own)."""
        part = self._part_of(error.key)
        if part is None:
            return False
        folder, shard = part
        copy = await quarantine(self._store.blobs, str(error.key), self._store.wall_time())
        if copy is not None:
            self.quarantined[str(error.key)] = copy
        if folder == "journal":
            self.lost_everything = True
        elif folder == "current":
            self.lost_shards.add(shard)
        self._invalidate()
        log.warning(
            "quarantined %s (%s) as %s: %s", error.key, error, copy, _consequence(folder, shard)
        )
        return True

    def _part_of(self, key: str | None) -> tuple[str, int] | None:
        """(folder, shard) of a data blob of the layout (shard -1 for a segment)."""
        prefix = f"{self._store.settings.prefix}/"
        if key is None or not key.startswith(prefix):
            return None
        folder = key[len(prefix) :].split("/", 1)[0]
        if folder == "journal":
            return folder, -1
        if folder not in ("current", "month", "daily"):
            return None
        try:
            return folder, int(key.rsplit("/", 1)[-1], 16)
        except ValueError:
            return None


def _consequence(folder: str, shard: int) -> str:
    if folder == "journal":
        return "every address is read again from the chain"
    if folder == "current":
        return f"the addresses of shard {shard} are read again from the chain"
    return f"history of shard {shard} is lost; `balances backfill --force` restores it"
