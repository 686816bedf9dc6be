"""Rebuilding the sharded layout's manifest from the store's listing.

The manifest says two things: the shard count, and the newest journal segment
folded into the shard blobs (``folded_through``), below which readers list no
segments. Both can be recovered from what else is stored:

- the shard count is the configured one, checked against every shard blob listed
  (a blob numbered past it means the store was written with more shards);
- compaction deletes a segment only after every shard it concerns holds it, so
  every segment older than the oldest one still listed is in the shard blobs. The
  rebuilt ``folded_through`` is the newest shard blob's ``folded_through`` that is
  older than that oldest listed segment (None when there is none: readers then fold
  every listed segment again, which the join makes harmless).

The ingest cursor the manifest kept for compacted segments is not rebuilt: readers
take the newest mark of the listed segments, and ingestion without one resumes as
on a first start.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from balances.errors import BlobNotFoundError, ConfigError, CorruptBlobError
from balances.stores.encoding import CONTENT_TYPE
from balances.stores.quarantine import replace_damaged
from balances.stores.sharded.documents import decode_current
from balances.stores.sharded.manifest import ManifestDocument, encode_manifest
from balances.stores.sharded.parts import ShardedParts

log = logging.getLogger("balances.stores")


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A manifest rebuilt from the listing; ``quarantined`` is where the damaged one went."""

    document: ManifestDocument
    quarantined: str | None
    #: Shard blobs that could not be read while rebuilding (repair quarantines them).
    unreadable_shards: tuple[str, ...] = ()


def shard_index(key: str) -> int | None:
    """The shard number of a ``<prefix>/current/<hex>`` (or month, daily) key."""
    try:
        return int(key.rsplit("/", 1)[-1], 16)
    except ValueError:
        return None


async def manifest_from_listing(store: ShardedParts) -> tuple[ManifestDocument, list[str]]:
    """The manifest the store's other blobs imply, and the shard blobs that did not
    decode (left out of the reckoning)."""
    shards = store.settings.shards
    shard_keys = [key async for key in store.blobs.iter_keys(store.key("current") + "/")]
    too_far = [key for key in shard_keys if (shard_index(key) or 0) >= shards]
    if too_far:
        raise ConfigError(
            f"the store holds {too_far[0]!r}, beyond the configured {shards} shards; "
            "set BALANCES_SHARDS to the count it was written with"
        )
    folded: list[str] = []
    unreadable: list[str] = []
    for key in shard_keys:
        try:
            doc = decode_current((await store.blobs.get(key)).data, key)
        except BlobNotFoundError:
            continue
        except CorruptBlobError:
            unreadable.append(key)
            continue
        if doc.folded_through is not None:
            folded.append(doc.folded_through)
    listed = await store.journal.list_ids()
    return ManifestDocument(shards, _folded_through(folded, listed)), unreadable


def _folded_through(folded: Sequence[str], listed: Sequence[str]) -> str | None:
    oldest = min(listed, default=None)
    safe = [f for f in folded if oldest is None or f < oldest]
    return max(safe, default=None)


async def rebuild_manifest(store: ShardedParts, now: float) -> Rebuilt:
    """Write the manifest the listing implies over a damaged (or missing) one; the
    damaged copy goes to quarantine. Conditional: a concurrent rebuild wins."""
    document, unreadable = await manifest_from_listing(store)
    key = store.manifest.key
    kept = await replace_damaged(store.blobs, key, encode_manifest(document), CONTENT_TYPE, now)
    store.manifest.invalidate()
    log.warning(
        "rebuilt %s from the listing (folded through %s)%s",
        key,
        document.folded_through,
        f"; the damaged copy is kept as {kept}" if kept else "",
    )
    return Rebuilt(document, kept, tuple(unreadable))
