"""The layout's manifest: how many shards, and the journal compacted so far.

The shard count is fixed when a store is first written: addresses map to shards by
it, so a different count would look for balances in the wrong blobs. Opening a
store with another count is a :class:`ConfigError`, not a silent re-shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from balances.blobs import BlobStore
from balances.errors import ConfigError
from balances.stores.document import SharedDocument
from balances.stores.encoding import corrupt, decode_document, encode_document
from balances.stores.sharded.journal import IngestMark, decode_mark, mark_json

KIND = "lsm-manifest"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class ManifestDocument:
    shards: int | None = None
    #: Every journal segment up to this id is in the shard blobs (and may be deleted).
    folded_through: str | None = None
    #: The newest ingest mark of the folded segments (the cursor, once they are gone).
    ingest: IngestMark | None = None


def encode_manifest(doc: ManifestDocument) -> bytes:
    body: dict[str, object] = {"shards": doc.shards, "folded_through": doc.folded_through}
    if doc.ingest is not None:
        body["ingest"] = mark_json(doc.ingest)
    return encode_document(KIND, FORMAT, body)


def decode_manifest(data: bytes, where: str) -> ManifestDocument:
    document = decode_document(data, KIND, FORMAT, where=where)
    shards, folded = document.get("shards"), document.get("folded_through")
    if not isinstance(shards, int) or (folded is not None and not isinstance(folded, str)):
        raise corrupt(where, "shards must be an int and folded_through a segment id")
    try:
        ingest = None if document.get("ingest") is None else decode_mark(document["ingest"])
    except (KeyError, TypeError, ValueError) as error:
        raise corrupt(where, f"ingest mark: {error}") from error
    return ManifestDocument(shards, folded, ingest)


class Manifest:
    def __init__(
        self,
        blobs: BlobStore,
        key: str,
        shards: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shards = shards
        self._doc: SharedDocument[ManifestDocument] = SharedDocument(
            blobs,
            key,
            empty=ManifestDocument,
            encode=encode_manifest,
            decode=decode_manifest,
            recheck_seconds=300.0,
            clock=clock,
        )

    @property
    def key(self) -> str:
        return self._doc.key

    async def current(self) -> ManifestDocument:
        doc = await self._doc.current()
        if doc.shards is not None and doc.shards != self._shards:
            raise ConfigError(
                f"this store was written with {doc.shards} shards, not {self._shards}; "
                f"set BALANCES_SHARDS={doc.shards} (or use a new store)"
            )
        return doc

    async def ensure(self) -> ManifestDocument:
        """Write the shard count on first use, so a store is never re-sharded silently."""
        doc = await self.current()
        if doc.shards is not None:
            return doc
        return await self._doc.update(lambda known: replace(known, shards=self._shards))

    async def advance(
        self, folded_through: str, ingest: IngestMark | None = None
    ) -> ManifestDocument:
        """Record that every segment up to ``folded_through`` is compacted (and the
        newest ingest mark they carried)."""
        await self.current()

        def change(doc: ManifestDocument) -> ManifestDocument:
            known = doc.folded_through
            newest = folded_through if known is None else max(known, folded_through)
            # The mark of the newest folded segment is the cursor (a reorg may lower it).
            mark = doc.ingest if ingest is None or newest != folded_through else ingest
            return replace(doc, shards=self._shards, folded_through=newest, ingest=mark)

        return await self._doc.update(change)

    def invalidate(self) -> None:
        self._doc.invalidate()
