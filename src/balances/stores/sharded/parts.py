"""The parts of the sharded layout that its store, compactor and repairs share.

:class:`ShardedParts` holds the blob store, the settings, the journal, the manifest
and the naming of every blob. Compaction (:mod:`.compact`), the manifest rebuild
(:mod:`.rebuild`) and self-repair (:mod:`.heal`) work on these parts;
:class:`~balances.stores.sharded.store.ShardedStore` builds on them and adds the
reading and writing of balances. So the store depends on its compactor, never the
other way round.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from balances.blobs import BlobStore, blob_key
from balances.stores.cache import TtlLruCache
from balances.stores.sharded.journal import Journal
from balances.stores.sharded.manifest import Manifest

DEFAULT_SHARDS = 256
DEFAULT_PREFIX = "v1"
#: How long a written blob is kept for the next compaction: a week, well past the
#: daily pass (a stale copy costs one failed If-Match write, never a lost update).
WRITTEN_TTL_SECONDS = 7 * 86400.0


def shard_of(address: str, shards: int) -> int:
    """A stable shard for ``address`` (blake2b, not Python's salted hash)."""
    digest = hashlib.blake2b(address.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def newer(a: str | None, b: str | None) -> str | None:
    """The later of two segment ids (None is before everything)."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@dataclass(frozen=True, slots=True)
class LsmSettings:
    shards: int = DEFAULT_SHARDS
    prefix: str = DEFAULT_PREFIX
    recheck_seconds: float = 300.0
    poll_seconds: float = 300.0
    max_points_per_month: int = 1000
    retention_days: int = 365
    compact_grace_seconds: float = 600.0
    blob_cache_bytes: int = 64_000_000
    #: Compressed shard blobs this process wrote, kept so the next compaction
    #: rewrites them without downloading them again (its If-Match catches a change).
    written_cache_bytes: int = 256_000_000


class ShardedParts:
    """The blobs of one sharded layout, and how each is named."""

    def __init__(
        self,
        blobs: BlobStore,
        settings: LsmSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or LsmSettings()
        self.blobs = blobs
        self._clock = clock
        self._wall = wall_clock
        self.journal = Journal(blobs, self.settings.prefix, wall_clock=wall_clock)
        self.manifest = Manifest(blobs, self.key("manifest"), self.settings.shards, clock=clock)
        #: The first month kept when retention last swept (see :mod:`.compact`).
        self.retention_swept: str | None = None
        #: Compressed shard blobs this process wrote: key -> (etag, bytes).
        self.written: TtlLruCache[str, tuple[str, bytes]] = TtlLruCache(
            ttl=WRITTEN_TTL_SECONDS,
            max_entries=1_000_000,
            max_bytes=self.settings.written_cache_bytes,
            size_of=lambda entry: len(entry[1]),
            clock=clock,
            name="written-shard-blobs",
        )

    def key(self, *parts: str) -> str:
        return blob_key(self.settings.prefix, *parts)

    def current_key(self, shard: int) -> str:
        return self.key("current", f"{shard:03x}")

    def month_key(self, month: str, shard: int) -> str:
        return self.key("month", month, f"{shard:03x}")

    def daily_key(self, shard: int) -> str:
        return self.key("daily", f"{shard:03x}")

    def shard(self, address: str) -> int:
        return shard_of(address, self.settings.shards)

    def wall_time(self) -> float:
        return self._wall()
